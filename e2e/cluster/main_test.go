//go:build e2e

package cluster

import (
	"os"
	"testing"

	"github.com/mongorelay/mongorelay/e2e/internal/relaybin"
)

// mongorelayBin is the mongorelay binary the tests run, built once by TestMain.
var mongorelayBin string

func TestMain(m *testing.M) {
	os.Exit(relaybin.Run(m, &mongorelayBin))
}
