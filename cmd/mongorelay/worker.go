package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/worker"
)

// runWorker runs a cluster node until SIGINT/SIGTERM, then stops its tasks cleanly and exits 0
// without leaving the cluster (a restart with the same data dir takes its place again).
// `mongorelay worker leave` takes a node out of the cluster for good.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "leave" {
		return runLeave(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mongorelay worker [flags]            run a cluster node")
		fmt.Fprintln(stderr, "       mongorelay worker leave [flags]      remove a node from the cluster")
		fmt.Fprintln(stderr, "\nFlags override MONGORELAY_* variables, which override the --config YAML file.")
		fs.PrintDefaults()
	}
	cfg, err := worker.ParseWorkerFlags(fs, args, os.Getenv, os.ReadFile)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return worker.NewCluster(cfg, cfg.Logger(stderr), version, commit).Run(ctx)
}

// runLeave asks the cluster, through any member's REST API, to remove a node. The node's
// tasks move at once; the node itself, if still running, exits when its next heartbeat is
// refused.
func runLeave(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker leave", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mongorelay worker leave --node-id <id> [--http [https://]<member host:port>] [--http-auth-token <token>] [--http-tls-ca <ca.pem>]")
		fs.PrintDefaults()
	}
	env := func(key string) string { return os.Getenv(worker.EnvName(key)) }
	id := fs.String("node-id", env("node.id"), "the node to remove (env "+worker.EnvName("node.id")+")")
	addr := fs.String("http", "127.0.0.1:8083", "REST address (host:port) of any member; https://host:port when the nodes have http.tls.*")
	token := fs.String("http-auth-token", env("http.auth.token"), "the nodes' admin token, when they have one (env "+worker.EnvName("http.auth.token")+")")
	ca := fs.String("http-tls-ca", env("http.tls.ca"), "PEM file of the CAs of the nodes' certificates; empty: the system's (env "+worker.EnvName("http.tls.ca")+")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *id == "" {
		return errors.New("--node-id is required")
	}
	target, secure := strings.CutPrefix(*addr, "https://")
	target = strings.TrimPrefix(target, "http://")
	var opts []peer.ClientOption
	if *token != "" {
		opts = append(opts, peer.Authorization("Bearer "+*token))
	}
	hc := &http.Client{}
	if secure {
		opts = append(opts, peer.HTTPS())
		trust, err := httpserve.ClientTLS(*ca)
		if err != nil {
			return fmt.Errorf("--http-tls-ca: %w", err)
		}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = trust
		hc.Transport = transport
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := peer.NewClient(hc, opts...).RemoveNode(ctx, target, *id); err != nil {
		return fmt.Errorf("remove node %s: %w", *id, err)
	}
	_, err := fmt.Fprintf(stdout, "node %s removed from the cluster\n", *id)
	return err
}
