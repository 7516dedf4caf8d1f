//go:build e2e

package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the mongorelay binary the tests run, built once by TestMain without -race (DESIGN.md
// 10: process binaries stay fast; the unit tests keep the race detector).
var mongorelayBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mongorelay-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	mongorelayBin = filepath.Join(dir, "mongorelay")
	build := exec.Command("go", "build", "-trimpath", "-o", mongorelayBin, "../../cmd/mongorelay")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build mongorelay:", err)
		return 1
	}
	return m.Run()
}
