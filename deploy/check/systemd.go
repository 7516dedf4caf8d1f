package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// shutdownTimeout is the default of the worker setting shutdown.timeout: every deployment
// gives a stopping node longer than this before it kills it.
const shutdownTimeout = 30 * time.Second

var (
	execStart   = regexp.MustCompile(`(?m)^ExecStart=(\S+)`)
	timeoutStop = regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)`)
)

// Systemd writes unit, with its ExecStart pointing at binary, to a temporary directory and runs
// `systemd-analyze verify` on it. Any diagnostic fails the check: systemd-analyze exits 0 on an
// unknown key or a value it cannot parse, and only says so. It also checks that the unit
// gives a stopping node longer than shutdown.timeout.
func Systemd(ctx context.Context, name string, unit []byte, binary string) error {
	m := execStart.FindSubmatchIndex(unit)
	if m == nil {
		return fmt.Errorf("%s has no ExecStart", name)
	}
	copied := slices.Concat(unit[:m[2]], []byte(binary), unit[m[3]:])
	dir, err := os.MkdirTemp("", "mongorelay-unit-")
	if err != nil {
		return fmt.Errorf("temporary directory for %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, copied, 0o644); err != nil {
		return fmt.Errorf("copy %s: %w", name, err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "systemd-analyze", "verify", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	var problems []error
	if err := cmd.Run(); err != nil {
		problems = append(problems, fmt.Errorf("systemd-analyze verify %s: %w: %s", name, err, strings.TrimSpace(out.String())))
	} else if out.Len() > 0 {
		problems = append(problems, fmt.Errorf("systemd-analyze verify %s: %s", name, strings.TrimSpace(out.String())))
	}
	if stop := timeoutStop.FindSubmatch(unit); stop == nil {
		problems = append(problems, fmt.Errorf("%s: no TimeoutStopSec above shutdown.timeout (%s)", name, shutdownTimeout))
	} else if d, err := time.ParseDuration(strings.TrimSuffix(string(stop[1]), "s") + "s"); err != nil || d <= shutdownTimeout {
		problems = append(problems, fmt.Errorf("%s: TimeoutStopSec=%s, want seconds above shutdown.timeout (%s)", name, stop[1], shutdownTimeout))
	}
	return errors.Join(problems...)
}
