package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/worker"
)

// runHealthcheck asks a node's GET /health (KIP-1017) whether it is alive and returns an error,
// so exit status 1, unless it answers 200. It exists for container HEALTHCHECKs and probes
// on images without curl: by default it reads the node's own MONGORELAY_HTTP_LISTEN and
// MONGORELAY_HTTP_TLS_* variables and calls the REST API on loopback.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mongorelay healthcheck [--http [https://]host:port] [--http-tls-ca <ca.pem>] [--timeout 5s]")
		fmt.Fprintln(stderr, "\nExits 0 when the node answers GET /health with 200, else 1.")
		fs.PrintDefaults()
	}
	env := func(key string) string { return os.Getenv(worker.EnvName(key)) }
	addr := fs.String("http", defaultHealthAddr(env("http.listen"), env("http.tls.cert") != ""),
		"REST address of the node; https://host:port when it serves HTTPS (default: loopback at the port of "+worker.EnvName("http.listen")+", https when "+worker.EnvName("http.tls.cert")+" is set)")
	ca := fs.String("http-tls-ca", env("http.tls.ca"), "PEM file of the CAs of the node's certificate; empty: the system's (env "+worker.EnvName("http.tls.ca")+")")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, secure := strings.CutPrefix(*addr, "https://")
	target = strings.TrimPrefix(target, "http://")
	scheme := "http"
	client := &http.Client{Timeout: *timeout}
	if secure {
		scheme = "https"
		trust, err := httpserve.ClientTLS(*ca)
		if err != nil {
			return fmt.Errorf("--http-tls-ca: %w", err)
		}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = trust
		client.Transport = transport
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := scheme + "://" + target + "/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health request to %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err // a *url.Error: it names the method and the URL
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("read the answer of GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(body)))
	return err
}

// defaultHealthAddr is the loopback address of the REST API a node started with listen
// (http.listen; empty: its default port 8083) serves: a check run inside the node's own
// container or host reaches it there whatever interface it binds.
func defaultHealthAddr(listen string, tls bool) string {
	port := "8083"
	if listen != "" {
		if _, p, err := net.SplitHostPort(listen); err == nil && p != "" {
			port = p
		}
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	if tls {
		return "https://" + addr
	}
	return addr
}
