package netns

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// dial connects from inside h to addr with bash's /dev/tcp, for at most 2 s, and returns what
// it said: "" once connected, else bash's complaint (a refusal still proves the path works).
func dial(t *testing.T, h *Host, addr string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	argv := h.Command("timeout", "2", "bash", "-c", "exec 3<>/dev/tcp/"+host+"/"+port)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err == nil {
		return ""
	}
	if len(out) == 0 {
		return err.Error()
	}
	return strings.TrimSpace(string(out))
}

// TestLabCutsAndHeals builds a lab of two hosts and checks what each of its faults cuts: a
// host reaches this host's bridge address and the other host, not once cut off; after Sever
// the two hosts no longer reach each other but still reach the bridge; everything is reachable
// again once healed and mended, and nothing of the lab is left after Close.
func TestLabCutsAndHeals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := New(ctx, 2)
	if errors.Is(err, ErrNotPermitted) && os.Getenv("CI") != "true" {
		t.Skipf("the multi-host lab needs network namespaces (run as root, or under CI=true where they work): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = l.Close()
		}
	})
	ln, err := net.Listen("tcp", l.HostAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	h1, h2 := l.Hosts[0], l.Hosts[1]
	// Nothing listens on port 9 of h2: "refused" proves that the packets got there and back.
	peer := net.JoinHostPort(h2.Addr, "9")
	// A path that should work gets a few tries: a neighbour entry that failed while the link
	// was down takes a moment to be resolved again.
	reaches := func(what string, h *Host, addr string, want bool) {
		t.Helper()
		var said string
		for try := 0; try < 5; try++ {
			said = dial(t, h, addr)
			got := said == "" || strings.Contains(said, "refused")
			if got == want {
				return
			}
			if !want {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Errorf("%s: %s dialling %s: %q, want reachable=%v", what, h.Name, addr, said, want)
	}
	reaches("built", h1, ln.Addr().String(), true)
	reaches("built", h1, peer, true)

	if err := l.Cut(ctx, h1); err != nil {
		t.Fatal(err)
	}
	reaches("h1 cut off", h1, ln.Addr().String(), false)
	reaches("h1 cut off", h2, ln.Addr().String(), true)
	if err := l.Heal(ctx, h1); err != nil {
		t.Fatal(err)
	}
	reaches("h1 healed", h1, ln.Addr().String(), true)

	if err := l.Sever(ctx, h1, h2); err != nil {
		t.Fatal(err)
	}
	reaches("h1 and h2 severed", h1, peer, false)
	reaches("h1 and h2 severed", h1, ln.Addr().String(), true)
	reaches("h1 and h2 severed", h2, ln.Addr().String(), true)
	if err := l.Mend(ctx, h1, h2); err != nil {
		t.Fatal(err)
	}
	reaches("h1 and h2 mended", h1, peer, true)

	closed = true
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	ns, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out)+string(ns), l.Tag) {
		t.Errorf("the lab %s is still there after Close:\n%s\n%s", l.Tag, out, ns)
	}
}
