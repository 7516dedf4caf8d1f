package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mongorelay/mongorelay/worker"
)

// runStandalone runs connectors from JSON files in this one process (no cluster), until
// SIGINT/SIGTERM, then flushes, commits and exits 0, or 1 when a task had FAILED.
func runStandalone(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("standalone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mongorelay standalone [flags] connector.json [more.json...]")
		fs.PrintDefaults()
	}
	cfg, files, err := worker.ParseFlags(fs, args, os.Getenv)
	if err != nil {
		return err
	}
	conns, err := worker.LoadConnectorFiles(files)
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	log.Info("mongorelay standalone starting", "version", version, "commit", commit, "connectors", len(conns))
	return worker.NewStandalone(cfg, conns, log).Run(ctx)
}
