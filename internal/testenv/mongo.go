package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mongoReadyPrefix starts the one line the stand-in prints on stdout once it accepts
// connections; the address follows it.
const mongoReadyPrefix = "mongo-standin listening on "

// StartMongo starts a private MongoDB stand-in from MongoJar(tb) on a free port, with args
// added to its command line (for example "--oplog-max-entries", "100"), and returns its
// connection string. The process is stopped, and waited for, when the test ends.
//
// Use it for tests that need a server of their own (a small oplog, a measurement); the shared
// server from Mongo(tb) is cheaper.
func StartMongo(tb testing.TB, args ...string) string {
	tb.Helper()
	jar := MongoJar(tb)
	cmdArgs := append([]string{"-jar", jar, "--bind", "127.0.0.1", "--port", "0"}, args...)
	cmd := exec.Command("java", cmdArgs...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("start mongo stand-in: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start mongo stand-in %s: %v", jar, err)
	}
	tb.Cleanup(func() {
		stopMongo(tb, cmd)
		if tb.Failed() && stderr.String() != "" {
			tb.Logf("mongo stand-in stderr:\n%s", stderr.String())
		}
	})

	addr := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if line := scanner.Text(); strings.HasPrefix(line, mongoReadyPrefix) {
				addr <- strings.TrimPrefix(line, mongoReadyPrefix)
				break
			}
		}
		close(addr)
		// Keep draining so the process never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	}()

	select {
	case a, ok := <-addr:
		if !ok {
			tb.Fatalf("mongo stand-in exited before listening: %s", stderr.String())
		}
		return fmt.Sprintf("mongodb://%s/?directConnection=true", a)
	case <-time.After(60 * time.Second):
		tb.Fatalf("mongo stand-in did not start listening within 60s: %s", stderr.String())
		return ""
	}
}

// stopMongo asks the stand-in to exit (SIGTERM), and kills it if it has not within 10s.
func stopMongo(tb testing.TB, cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		tb.Logf("mongo stand-in did not stop on SIGTERM within 10s; killed it")
	}
}

// lockedBuffer collects the process's stderr, which exec copies in from another goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
