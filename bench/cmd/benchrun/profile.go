package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runMicrobench runs the hot path's Go micro-benchmarks briefly and returns their output.
func runMicrobench(ctx context.Context, cfg *config) string {
	logf("micro-benchmarks (-benchtime %s)", cfg.microbenchTime)
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem",
		"-benchtime", cfg.microbenchTime, "./tasks/avroschema/", "./tasks/envelope/", "./tasks/")
	cmd.Dir = cfg.root
	out, err := cmd.CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		text += "\n(go test: " + err.Error() + ")"
	}
	return text
}

// profileResult is the CPU profile of mongorelay on the insert workload.
type profileResult struct {
	m    *measurement
	path string
	top  string
	err  string
}

// profileRelay runs the insert workload once more with relayprof (worker.Standalone in-process
// under runtime/pprof) and summarises the profile with `go tool pprof -top`.
func (r *runner) profileRelay(ctx context.Context) *profileResult {
	logf("relay-1 / insert under a CPU profile")
	path := filepath.Join(r.cfg.work, "relay-insert.cpu.pprof")
	res := &profileResult{path: path}
	m := &measurement{system: "relayprof", workload: "insert", expected: r.loads["insert"].expected}
	r.relayRun(ctx, "insert", m, 1, r.cfg.profBin, []string{"-cpuprofile", path})
	res.m = m
	if !m.ok() {
		res.err = m.status
		return res
	}
	logf("  %.0f events/s under the profiler", m.eventsPerSec())
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	top, err := exec.CommandContext(pctx, "go", "tool", "pprof", "-top", "-nodecount=30", r.cfg.profBin, path).CombinedOutput()
	if err != nil {
		res.err = fmt.Sprintf("go tool pprof: %v: %s", err, top)
		return res
	}
	cum, err := exec.CommandContext(pctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=30", r.cfg.profBin, path).CombinedOutput()
	if err != nil {
		res.err = fmt.Sprintf("go tool pprof: %v: %s", err, cum)
		return res
	}
	res.top = strings.TrimSpace(string(top)) + "\n\n" + strings.TrimSpace(string(cum))
	return res
}
