// Command relayprof runs `mongorelay standalone` in-process with a CPU profile: the same
// worker.Standalone the binary runs, built from the same packages, with runtime/pprof around
// it. It exists because the binary has no profiling endpoint yet (bench/README.md proposes
// --pprof.listen); once it has, `make bench` can profile bin/mongorelay itself.
//
//	relayprof -cpuprofile cpu.pprof [standalone flags] connector.json
//
// The profile covers the whole process life and is written when it stops (SIGINT/SIGTERM).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/mongorelay/mongorelay/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "relayprof: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("relayprof", flag.ContinueOnError)
	profile := fs.String("cpuprofile", "", "write a CPU profile here (required)")
	cfg, files, err := worker.ParseFlags(fs, args, os.Getenv)
	if err != nil {
		return err
	}
	if *profile == "" {
		return fmt.Errorf("give -cpuprofile <file>")
	}
	conns, err := worker.LoadConnectorFiles(files)
	if err != nil {
		return err
	}
	f, err := os.Create(*profile)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	log := cfg.Logger(os.Stderr)
	log.Info("mongorelay standalone starting under a CPU profile", "profile", *profile, "connectors", len(conns))
	return worker.NewStandalone(cfg, conns, log, "relayprof", "").Run(ctx)
}
