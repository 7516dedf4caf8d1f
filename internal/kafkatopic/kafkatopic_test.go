package kafkatopic

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDescribeConfigsWaitsForATopicBeingCreated describes a topic that another client
// creates a moment later, as a node that lost the race to create it does.
func TestDescribeConfigsWaitsForATopicBeingCreated(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "late")
		created <- err
	}()
	rc, err := DescribeConfigs(ctx, adm, "late")
	if err != nil {
		t.Fatalf("DescribeConfigs of a topic created 300 ms later: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc.Configs {
		found = found || (c.Key == "cleanup.policy" && c.MaybeValue() == "compact")
	}
	if !found {
		t.Errorf("configs %v lack cleanup.policy=compact", rc.Configs)
	}

	// A topic nobody creates is still unknown once the wait is over; a cancelled context
	// ends the wait at once.
	short, stop := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stop()
	if _, err := DescribeConfigs(short, adm, "never"); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("DescribeConfigs of a topic never created = %v, want the context's end", err)
	}
}
