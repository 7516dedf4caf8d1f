// Package relaybin builds the mongorelay binaries the end-to-end suites run as processes.
package relaybin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pkg is the command built, named by import path so that a build works from any package of the
// module.
const pkg = "github.com/mongorelay/mongorelay/cmd/mongorelay"

// Run is the body of a suite's TestMain: it builds the mongorelay binary into a temporary
// directory, stores its path in *bin, runs the tests and removes the directory (with whatever
// else the tests built into it with Build). It returns the exit code for os.Exit: m.Run's, or
// 1 when the build fails.
func Run(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "mongorelay-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir for the mongorelay binary:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// Build builds mongorelay with the build tags given into dir and returns the binary's path
// (mongorelay, or mongorelay-<tags> with tags). Without -race (DESIGN.md 10: the processes run
// at speed; the unit tests keep the race detector) and without cgo, as releases are built.
func Build(dir string, tags ...string) (string, error) {
	name, args := "mongorelay", []string{"build", "-trimpath"}
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	bin := filepath.Join(dir, name)
	build := exec.Command("go", append(args, "-o", bin, pkg)...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s (tags %q): %w\n%s", pkg, tags, err, out)
	}
	return bin, nil
}
