//go:build e2e

package hosts

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// mongorelayBin is the binary the nodes run, built once by TestMain without -race (DESIGN.md
// 10: process binaries stay fast).
var mongorelayBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mongorelay-e2e-hosts-bin-")
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
