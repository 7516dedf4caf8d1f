//go:build e2e

package contract

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mongorelayBin is the binary the tests run, built once by TestMain without -race, as the
// other end-to-end suites build it.
var mongorelayBin string

// via lists what the contract and the bad inputs go through: follower (a follower of a 3-node
// cluster, which forwards writes to the leader), leader, standalone.
var via = flag.String("contract.via", "follower", "comma-separated: follower, leader, standalone")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mongorelay-contract-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "contract: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	mongorelayBin = filepath.Join(dir, "mongorelay")
	build := exec.Command("go", "build", "-trimpath", "-o", mongorelayBin, "../../cmd/mongorelay")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "contract: build mongorelay:", err)
		return 1
	}
	return m.Run()
}
