package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/mongorelay/mongorelay/worker"
)

// runConfig answers questions about configuration: `config docs connector|worker` prints the
// reference page of every connector key or every worker setting, generated from the tables
// the code validates with (docs/ holds the committed copies; make docs writes them).
func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mongorelay config docs connector|worker    print a configuration reference page (Markdown)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 || fs.Arg(0) != "docs" {
		fs.Usage()
		return errors.New("name what to print: config docs connector, or config docs worker")
	}
	switch fs.Arg(1) {
	case "connector":
		return worker.WriteConnectorReference(stdout)
	case "worker":
		return worker.WriteWorkerReference(stdout)
	}
	return fmt.Errorf("config docs %q: choose connector or worker", fs.Arg(1))
}
