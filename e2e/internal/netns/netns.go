// Package netns builds a small network of Linux network namespaces for the multi-host tests:
// a bridge on this host with an address of its own, and namespaces plugged into it by veth
// pairs, each one host with one address on the bridge's /24 and no route anywhere else, so
// that what runs inside reaches the bridge's namespaces and this host's bridge address only.
// It cuts a host off (its link down), and the link between two hosts (a blackhole route each
// way), and heals both. It drives iproute2's `ip`; it needs root (CAP_NET_ADMIN and
// CAP_SYS_ADMIN).
package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os/exec"
	"strings"
	"time"
)

// ErrNotPermitted means this process may not create network namespaces (not root, or a
// sandbox that forbids it).
var ErrNotPermitted = errors.New("network namespaces are not permitted here")

// Lab is the bridge and its hosts. Every name it makes carries a random tag, and its subnet is
// one no interface of this host has, so that labs of runs side by side never meet.
type Lab struct {
	// HostAddr is this host's address on the bridge: servers that the hosts must reach listen
	// there.
	HostAddr string
	Hosts    []*Host
	// Tag starts the name of everything the lab made.
	Tag string

	bridge string
	subnet string // the first three octets, "10.77.x"
}

// Host is one network namespace on the bridge.
type Host struct {
	Name string // the namespace's name, as `ip netns` lists it
	Addr string // its address on the bridge
	veth string // the host side of its veth pair, on the bridge
}

// New makes a bridge and n namespaces on it. On error it deletes what it made.
func New(ctx context.Context, n int) (_ *Lab, err error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	l := &Lab{Tag: "mr" + hex.EncodeToString(b)}
	l.bridge = l.Tag + "b"
	if l.subnet, err = freeSubnet(ctx); err != nil {
		return nil, err
	}
	l.HostAddr = l.subnet + ".1"
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()
	if err := ip(ctx, "netns", "add", l.Tag+"-probe"); err != nil {
		if errors.Is(err, exec.ErrNotFound) || strings.Contains(err.Error(), "not permitted") || strings.Contains(err.Error(), "Permission denied") {
			return nil, fmt.Errorf("%w: %v", ErrNotPermitted, err)
		}
		return nil, err
	}
	if err := ip(ctx, "netns", "del", l.Tag+"-probe"); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"link", "add", l.bridge, "type", "bridge"},
		{"addr", "add", l.HostAddr + "/24", "dev", l.bridge},
		{"link", "set", l.bridge, "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= n; i++ {
		h := &Host{Name: fmt.Sprintf("%s-h%d", l.Tag, i), Addr: fmt.Sprintf("%s.%d", l.subnet, 10+i), veth: fmt.Sprintf("%sh%d", l.Tag, i)}
		inner := fmt.Sprintf("%sp%d", l.Tag, i)
		l.Hosts = append(l.Hosts, h)
		steps := [][]string{
			{"netns", "add", h.Name},
			{"link", "add", h.veth, "type", "veth", "peer", "name", inner},
			{"link", "set", inner, "netns", h.Name},
			{"-n", h.Name, "link", "set", inner, "name", "eth0"},
			{"-n", h.Name, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			{"-n", h.Name, "link", "set", "eth0", "up"},
			{"-n", h.Name, "link", "set", "lo", "up"},
			{"link", "set", h.veth, "master", l.bridge},
			{"link", "set", h.veth, "up"},
		}
		for _, s := range steps {
			if err := ip(ctx, s...); err != nil {
				return nil, fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
	}
	return l, nil
}

// Close deletes the hosts' namespaces and veth pairs and the bridge. Processes still running in
// a namespace keep it alive, unreachable, until they exit: stop them first.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, h := range l.Hosts {
		// Deleting one end of a veth pair deletes both.
		if exists(ctx, "link", "show", h.veth) {
			errs = append(errs, ip(ctx, "link", "del", h.veth))
		}
		if exists(ctx, "netns", "pids", h.Name) {
			errs = append(errs, ip(ctx, "netns", "del", h.Name))
		}
	}
	if exists(ctx, "link", "show", l.bridge) {
		errs = append(errs, ip(ctx, "link", "del", l.bridge))
	}
	if exists(ctx, "netns", "pids", l.Tag+"-probe") {
		errs = append(errs, ip(ctx, "netns", "del", l.Tag+"-probe"))
	}
	return errors.Join(errs...)
}

// Command returns the command line that runs argv inside h's namespace.
func (h *Host) Command(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", h.Name}, argv...)
}

// Cut takes h's link to the bridge down: h reaches nothing and nothing reaches it, its
// connections stall as they do when a cable is pulled.
func (l *Lab) Cut(ctx context.Context, h *Host) error {
	return ip(ctx, "link", "set", h.veth, "down")
}

// Heal brings h's link up again, and returns once both of its ends say they are up.
func (l *Lab) Heal(ctx context.Context, h *Host) error {
	if err := ip(ctx, "link", "set", h.veth, "up"); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		outer, _ := exec.CommandContext(ctx, "ip", "-o", "link", "show", "dev", h.veth).Output()
		inner, _ := exec.CommandContext(ctx, "ip", "-n", h.Name, "-o", "link", "show", "dev", "eth0").Output()
		if strings.Contains(string(outer), "state UP") && strings.Contains(string(inner), "state UP") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the link of %s is not up 10 s after it was brought up: %s%s", h.Name, outer, inner)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Sever drops what a and b send each other (a blackhole route to the other in each
// namespace), while both still reach every other host and the bridge.
func (l *Lab) Sever(ctx context.Context, a, b *Host) error {
	if err := ip(ctx, "-n", a.Name, "route", "add", "blackhole", b.Addr+"/32"); err != nil {
		return err
	}
	return ip(ctx, "-n", b.Name, "route", "add", "blackhole", a.Addr+"/32")
}

// Mend undoes Sever.
func (l *Lab) Mend(ctx context.Context, a, b *Host) error {
	return errors.Join(
		ip(ctx, "-n", a.Name, "route", "del", "blackhole", b.Addr+"/32"),
		ip(ctx, "-n", b.Name, "route", "del", "blackhole", a.Addr+"/32"))
}

// freeSubnet picks a 10.77.x.0/24 that no address of this host is in, starting at a random x.
func freeSubnet(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		return "", fmt.Errorf("list this host's addresses: %w", err)
	}
	start, err := rand.Int(rand.Reader, big.NewInt(256))
	if err != nil {
		return "", err
	}
	for i := range 256 {
		subnet := fmt.Sprintf("10.77.%d", (int(start.Int64())+i)%256)
		if !strings.Contains(string(out), " "+subnet+".") {
			return subnet, nil
		}
	}
	return "", errors.New("every 10.77.x.0/24 is in use on this host")
}

// ip runs `ip args...` and returns its error with its output.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// exists reports whether `ip args...` succeeds: the link or namespace it names is there.
func exists(ctx context.Context, args ...string) bool {
	return exec.CommandContext(ctx, "ip", args...).Run() == nil
}
