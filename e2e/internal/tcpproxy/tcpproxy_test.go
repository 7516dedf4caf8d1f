package tcpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every line with the same line and counts the connections it accepted.
type echoServer struct {
	ln       net.Listener
	accepted atomic.Int32
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return s
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends a line and reads the answer, waiting at most wait.
func roundTrip(c net.Conn, wait time.Duration) (string, error) {
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	return bufio.NewReader(c).ReadString('\n')
}

func TestProxyForwardsUntilCutAndAfterRestore(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before runs on the proxy before the connection is dialed.
		before func(p *Proxy)
		// forwarded: the connection reaches the server and its answers come back.
		forwarded bool
	}{
		{"a connection of a proxy never cut", func(*Proxy) {}, true},
		{"a connection made during a cut", (*Proxy).Cut, false},
		{"a connection made after a restore", func(p *Proxy) { p.Cut(); p.Restore() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := startEcho(t)
			p := startProxy(t, echo.ln.Addr().String())
			tc.before(p)
			c := dial(t, p.Addr())
			got, err := roundTrip(c, 300*time.Millisecond)
			if tc.forwarded {
				if err != nil || got != "ping\n" {
					t.Fatalf("answer %q, %v; want the line echoed", got, err)
				}
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("answer %q, %v; want silence until the deadline", got, err)
			}
			if n := echo.accepted.Load(); n != 0 {
				t.Fatalf("the server accepted %d connections during the cut; want none", n)
			}
		})
	}
}

func TestCutResetsOpenConnections(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the cut: %v; want ECONNRESET", err)
	}
}

func TestConnectionHeldDuringTheCutStaysSilentAfterRestore(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	p.Cut()
	held := dial(t, p.Addr())
	time.Sleep(50 * time.Millisecond) // accepted and held before the restore
	p.Restore()
	if got, err := roundTrip(held, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("held connection answered %q, %v after the restore; want silence", got, err)
	}
	if got, err := roundTrip(dial(t, p.Addr()), time.Second); err != nil || got != "ping\n" {
		t.Fatalf("new connection after the restore: %q, %v", got, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = held.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := held.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("held connection after Close: %v; want ECONNRESET", err)
	}
}

func TestHalfCloseIsPassedOn(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t, echo.ln.Addr().String())
	c := dial(t, p.Addr())
	if _, err := io.WriteString(c, "last words"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v; want the echo, then end of stream", got, err)
	}
}

func TestTargetDownResetsTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := startProxy(t, target)
	// On loopback the reset may come before the dial has returned.
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("through a proxy of a closed port: %v; want ECONNRESET", err)
	}
}
