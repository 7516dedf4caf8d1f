package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/worker"
)

// runConfig answers questions about configuration: `config docs connector|worker` prints the
// reference page of every connector key or every worker setting, generated from the tables
// the code validates with (docs/ holds the committed copies; make docs writes them), and
// `config translate <file>` shows how a Debezium or MongoDB Kafka Connector config reads here.
func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mongorelay config docs connector|worker    print a configuration reference page (Markdown)")
		fmt.Fprintln(stderr, "       mongorelay config translate <file>          print the native config of a connector file and each key translated")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 2 && fs.Arg(0) == "translate" {
		return translateConfig(fs.Arg(1), stdout)
	}
	if fs.NArg() != 2 || fs.Arg(0) != "docs" {
		fs.Usage()
		return errors.New("name what to do: config docs connector, config docs worker, or config translate <file>")
	}
	switch fs.Arg(1) {
	case "connector":
		return worker.WriteConnectorReference(stdout)
	case "worker":
		return worker.WriteWorkerReference(stdout)
	}
	return fmt.Errorf("config docs %q: choose connector or worker", fs.Arg(1))
}

// translateConfig prints the connector of a file ({"name": ..., "config": {...}}, as
// standalone reads it) as the native config it runs with, secrets hidden, then each
// translated key, then each key that does nothing here. An invalid config is an error listing
// every problem.
func translateConfig(path string, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read connector file: %w", err)
	}
	name, raw, err := connector.ConnectorFromJSON(data)
	if err != nil {
		return fmt.Errorf("connector file %s: %w", path, err)
	}
	c, err := config.Parse(name, raw)
	if err != nil {
		return fmt.Errorf("connector file %s: %w", path, err)
	}
	native, changes := c.Translation()
	out, err := json.MarshalIndent(struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}{name, native}, "", "  ")
	if err != nil {
		return fmt.Errorf("print the native config: %w", err)
	}
	fmt.Fprintf(w, "native config:\n%s\n", out)
	var translated, warnings []config.Change
	for _, ch := range changes {
		if ch.Warning {
			warnings = append(warnings, ch)
		} else {
			translated = append(translated, ch)
		}
	}
	for _, section := range []struct {
		title   string
		changes []config.Change
	}{{"translations", translated}, {"warnings (these keys do nothing in mongorelay)", warnings}} {
		fmt.Fprintf(w, "\n%s:\n", section.title)
		if len(section.changes) == 0 {
			fmt.Fprintln(w, "  none")
		}
		for _, ch := range section.changes {
			fmt.Fprintf(w, "  %s\n", ch)
		}
	}
	return nil
}
