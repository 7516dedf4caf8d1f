// Command mongorelay captures MongoDB changes and publishes them as Avro records to Kafka.
//
// Each subcommand is a thin shell over the packages that do the work; see `mongorelay help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Set at link time by the Makefile (-ldflags "-X main.version=... -X main.commit=... -X main.date=...").
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

// exitUsage is the exit status for a command line that names no known subcommand, as with
// most CLIs (flag.ExitOnError uses it too).
const exitUsage = 2

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"config", "print the reference of every connector key or worker setting (config docs connector|worker), or translate a connector file (config translate <file>)", runConfig},
		{"consume", "print a topic's records as JSON lines, decoded through the schema registry", runConsume},
		{"healthcheck", "exit 0 if a node's GET /health answers 200, else 1 (for container HEALTHCHECKs and probes)", runHealthcheck},
		{"standalone", "run connectors from JSON files in this one process, without a cluster", runStandalone},
		{"version", "print the version, commit, build date and Go version", runVersion},
		{"worker", "run a cluster node: Raft, REST API, the tasks assigned to it (worker leave: remove a node)", runWorker},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return 0 // the flag set printed the usage
			}
			if err != nil {
				fmt.Fprintf(stderr, "mongorelay %s: %v\n", name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "mongorelay: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mongorelay <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintf(stdout, "mongorelay %s (commit %s, built %s, %s %s/%s)\n",
		version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
