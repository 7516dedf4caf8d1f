package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mongorelay/mongorelay/worker"
)

// runStandalone runs connectors from JSON files in this one process (a cluster of one node in
// memory, with the cluster's REST API on http.listen), until SIGINT/SIGTERM, then flushes,
// commits and exits 0, or 1 when a task had FAILED.
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
	return worker.NewStandalone(cfg, conns, cfg.Logger(stderr), version, commit).Run(ctx)
}
