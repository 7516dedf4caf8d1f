package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mongorelay/mongorelay/api/registryapi"
)

// serveRegistry serves reg's Confluent-compatible API on addr (registry.listen).
func serveRegistry(addr string, reg registryapi.SchemaRegistry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("worker config %q: listen on %s: %w (choose a free address)", "registry.listen", addr, err)
	}
	log.Info("schema registry listening", "addr", ln.Addr().String())
	return serve(ln, registryapi.NewServer(reg, log), "schema registry", log), nil
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
