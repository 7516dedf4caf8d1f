package testenv

import (
	"testing"

	"github.com/mongorelay/mongorelay/internal/testservers"
)

// Certs are PEM files made for one test: a CA, and a server certificate it signed for
// localhost and 127.0.0.1.
type Certs = testservers.Certs

// NewCerts makes a CA and a server certificate in a temporary directory of tb.
func NewCerts(tb testing.TB) Certs {
	tb.Helper()
	c, err := testservers.NewCerts(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
