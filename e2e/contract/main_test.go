//go:build e2e

package contract

import (
	"flag"
	"os"
	"testing"

	"github.com/mongorelay/mongorelay/e2e/internal/relaybin"
)

// mongorelayBin is the mongorelay binary the tests run, built once by TestMain.
var mongorelayBin string

// via lists what the contract and the bad inputs go through: follower (a follower of a 3-node
// cluster, which forwards writes to the leader), leader, standalone.
var via = flag.String("contract.via", "follower", "comma-separated: follower, leader, standalone")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(relaybin.Run(m, &mongorelayBin))
}
