//go:build e2e

package cluster

import (
	"testing"

	"github.com/mongorelay/mongorelay/e2e/internal/traffic"
)

// newConsumer starts reading every record of topics (traffic.Consumer; Run consumes).
func newConsumer(t *testing.T, brokers []string, topics []string) *traffic.Consumer {
	t.Helper()
	c, err := traffic.NewConsumer(brokers, topics)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
