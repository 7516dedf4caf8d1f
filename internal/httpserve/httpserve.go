// Package httpserve is what every HTTP listener of a node has (DESIGN.md 14): TLS when it is
// configured, read, write and idle timeouts, a body limit on every route, and recovery from a
// handler's panic with a 500 that shows no internal error.
package httpserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

// The timeouts of every listener. A slow or stalled client holds a connection and a goroutine
// for at most these; none of them limits a healthy request, which takes milliseconds (a write
// waits up to 10 s for a leader to be elected, then up to 30 s for the leader's answer).
const (
	// ReadHeaderTimeout bounds how long a client may take to send a request's headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout = 60 * time.Second
	// WriteTimeout bounds a request from the end of its headers to the end of its answer.
	WriteTimeout = 60 * time.Second
	// IdleTimeout closes a kept-alive connection that sends no request for this long.
	IdleTimeout = 120 * time.Second
	// stopWait is how long stopping a listener lets the requests in flight finish.
	stopWait = 5 * time.Second
)

// InternalError is the message of every 500 a node answers: what went wrong, which may name
// internal addresses, files or state, is in the node's log only.
const InternalError = "internal server error (see the node's log)"

// NewServer returns the server of one listener: h behind Recover, with the timeouts above,
// serving TLS with tlsConfig when it is not nil.
func NewServer(h http.Handler, tlsConfig *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           Recover(h, log),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug), // TLS handshake failures and the like
	}
}

// Serve serves h on ln (NewServer) until stop is called, which lets the requests in flight
// finish for up to 5 s. what names the listener in the log.
func Serve(ln net.Listener, h http.Handler, tlsConfig *tls.Config, what string, log *slog.Logger) (stop func()) {
	srv := NewServer(h, tlsConfig, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		if tlsConfig != nil {
			err = srv.ServeTLS(ln, "", "") // the certificate is in tlsConfig
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(what+" server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopWait)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
}

// ClientTLS is the TLS of a client of nodes' listeners (a node forwarding to another, mongorelay
// worker leave): it trusts the CAs of the PEM file caFile, or the system's when caFile is "".
func ClientTLS(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return cfg, nil
}

// Recover answers a request whose handler panicked with 500 and InternalError, in Kafka
// Connect's error shape, and logs the panic with its stack. A handler that had begun its
// answer cannot be answered again: its connection is cut (http.ErrAbortHandler), so that the
// client sees a broken answer rather than a truncated one that looks whole.
func Recover(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &recorder{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's own way to abort a request: let it
				panic(v)
			}
			log.Error("HTTP handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if rw.started {
				panic(http.ErrAbortHandler)
			}
			jsonerr.WriteHTTP(w, http.StatusInternalServerError, echo.MIMEApplicationJSON, http.StatusInternalServerError, InternalError)
		}()
		h.ServeHTTP(rw, r)
	})
}

// recorder notes whether a handler began its answer.
type recorder struct {
	http.ResponseWriter
	started bool
}

func (r *recorder) WriteHeader(status int) {
	r.started = true
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.started = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer (Flush, deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// LimitBody refuses a request whose body is over max bytes with 413 in the error shape, with
// the content type contentType: at once when its Content-Length says so, else when the handler
// reads past max (answer that read error with BodyError).
func LimitBody(max int64, contentType string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > max {
				return jsonerr.Write(c, http.StatusRequestEntityTooLarge, contentType, tooLarge(max).Body)
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, max)
			return next(c)
		}
	}
}

// BodyError is the answer to a request whose body could not be read: 413 when it went past
// LimitBody's limit, else 400.
func BodyError(err error) *jsonerr.Error {
	if tl, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge(tl.Limit)
	}
	return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "read the request body: %v", err)
}

func tooLarge(max int64) *jsonerr.Error {
	return jsonerr.New(http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge,
		"request body too large: this endpoint takes at most %s", size(max))
}

// size writes a byte count as people read it: 1 MiB, 512 KiB, 100 bytes.
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
