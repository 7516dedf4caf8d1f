package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// registryFor returns the schema registry a connector's tasks use: builtin, unless the
// connector names an external one (schema.registry.url).
func registryFor(c *config.Config, builtin tasks.SchemaRegistry) (tasks.SchemaRegistry, error) {
	if len(c.SchemaRegistryURLs) == 0 {
		return builtin, nil
	}
	urls := make([]string, len(c.SchemaRegistryURLs))
	for i, u := range c.SchemaRegistryURLs {
		urls[i] = u.Reveal()
	}
	cl, err := client.New(strings.Join(urls, ","))
	if err != nil {
		return nil, fmt.Errorf("connector %s: config %q: %w", c.Name, "schema.registry.url", err)
	}
	return client.NewCached(cl), nil
}

// serveRegistry serves reg's Confluent-compatible API on addr (registry.listen).
func serveRegistry(addr string, reg api.SchemaRegistry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("worker config %q: listen on %s: %w (choose a free address)", "registry.listen", addr, err)
	}
	log.Info("schema registry listening", "addr", ln.Addr().String())
	return serve(ln, api.NewRegistryServer(reg, log), "schema registry", log), nil
}

// serve serves h on ln until stop is called; stop lets requests in flight finish for up to 5s.
func serve(ln net.Listener, h http.Handler, what string, log *slog.Logger) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
}
