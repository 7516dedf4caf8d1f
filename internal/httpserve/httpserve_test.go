package httpserve

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestLimitBody: a body over the limit is refused 413 with the limit in the message, at once
// when Content-Length says so (the handler never runs) and when the handler reads past it
// (a chunked body); a body within the limit reaches the handler whole.
func TestLimitBody(t *testing.T) {
	const limit = 1 << 10
	ran := 0
	e := jsonerr.NewEcho("application/test+json")
	e.Use(LimitBody(limit, "application/test+json"))
	e.POST("/echo", func(c echo.Context) error {
		ran++
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			re := BodyError(err)
			return jsonerr.Write(c, re.Status, "application/test+json", re.Body)
		}
		return c.Blob(http.StatusOK, "text/plain", body)
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		body    io.Reader // a *bytes.Reader has a Content-Length, an io.MultiReader none (chunked)
		want    int
		handled int
	}{
		{"within the limit", bytes.NewReader(bytes.Repeat([]byte("a"), limit)), http.StatusOK, 1},
		{"over, by its Content-Length", bytes.NewReader(bytes.Repeat([]byte("a"), limit+1)), http.StatusRequestEntityTooLarge, 0},
		{"over, chunked", io.MultiReader(strings.NewReader(strings.Repeat("a", limit+1))), http.StatusRequestEntityTooLarge, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran = 0
			resp, err := http.Post(srv.URL+"/echo", "text/plain", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want || ran != tt.handled {
				t.Fatalf("%d %s after %d handler runs, want %d after %d", resp.StatusCode, body, ran, tt.want, tt.handled)
			}
			if tt.want == http.StatusRequestEntityTooLarge && (string(body) != `{"error_code":413,"message":"request body too large: this endpoint takes at most 1 KiB"}` ||
				resp.Header.Get("Content-Type") != "application/test+json") {
				t.Errorf("413 answer %s (%s)", body, resp.Header.Get("Content-Type"))
			}
		})
	}
	if re := BodyError(errors.New("connection reset")); re.Status != http.StatusBadRequest {
		t.Errorf("a body that could not be read for another reason: %d, want 400", re.Status)
	}
}

// TestRecover: a handler's panic is a 500 that names nothing of it, and the log has the panic
// and its stack; a panic after the answer began cuts the connection; other requests go on.
func TestRecover(t *testing.T) {
	var logs bytes.Buffer
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("secret internal state /var/lib/x") })
	mux.HandleFunc("/late", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		panic("late")
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := httptest.NewServer(Recover(mux, slog.New(slog.NewTextHandler(&logs, nil))))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/panic")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || string(body) != `{"error_code":500,"message":"internal server error (see the node's log)"}` ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("panic answered %d %s (%s)", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(logs.String(), "secret internal state") || !strings.Contains(logs.String(), "httpserve_test.go") {
		t.Errorf("the log lacks the panic or its stack: %s", logs.String())
	}

	if resp, err := http.Get(srv.URL + "/late"); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Error("a panic after the answer began gave a complete answer")
		}
	}
	if resp, err := http.Get(srv.URL + "/ok"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a request after the panics: %v", err)
	} else {
		resp.Body.Close()
	}
}

// TestServe: every listener has the timeouts, and serves TLS with a certificate; ClientTLS
// trusts the CA given.
func TestServe(t *testing.T) {
	srv := NewServer(http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout != ReadHeaderTimeout || srv.ReadTimeout != ReadTimeout || srv.WriteTimeout != WriteTimeout || srv.IdleTimeout != IdleTimeout {
		t.Errorf("timeouts %v %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}

	certs := testenv.NewCerts(t)
	cert, err := tlsPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("over tls")) }),
		cert, "test", slog.New(slog.DiscardHandler))
	defer stop()
	trust, err := ClientTLS(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: trust}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "over tls" {
		t.Errorf("https answer %q", body)
	}
	if _, err := http.Get("https://" + ln.Addr().String() + "/"); err == nil {
		t.Error("a client without the CA trusted the certificate")
	}
	if _, err := ClientTLS(certs.ServerKey); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a CA file of no certificate: %v", err)
	}
}

func tlsPair(cert, key string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}, nil
}
