package worker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mongorelay/mongorelay/coordinator"
)

// This file checks a cluster node's keys and derives what they leave open: the node id kept
// in the data dir and the addresses advertised to other nodes.

// nodeIDFile holds the node id in data.dir, so that a restart without --node-id keeps it.
const nodeIDFile = "node-id"

// clusterIDFile holds, in data.dir, the cluster.id of the cluster the node's Raft state
// belongs to.
const clusterIDFile = "cluster-id"

// checkCluster checks the keys that depend on each other.
func (c Config) checkCluster() []error {
	var errs []error
	if c.Lease >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("worker config %q: %s must be shorter than worker.session.timeout %s, so that a node has stopped its tasks before they move",
			"worker.lease", c.Lease, c.SessionTimeout))
	}
	if c.HeartbeatInterval >= c.Lease {
		errs = append(errs, fmt.Errorf("worker config %q: %s must be shorter than worker.lease %s",
			"worker.heartbeat.interval", c.HeartbeatInterval, c.Lease))
	}
	if c.Bootstrap && len(c.Join) > 0 {
		errs = append(errs, fmt.Errorf("worker config %q: a node either bootstraps the cluster (--bootstrap, on the first node) or joins one (--join), not both", "join"))
	}
	return errs
}

// exposed is a listener that takes requests from other hosts.
type exposed struct{ key, addr string }

// exposedListeners returns the REST and registry listeners that take requests from other
// hosts without authentication: every one that does not bind loopback, unless http.auth.* is
// set.
func (c Config) exposedListeners() []exposed {
	if c.HTTPAuthToken != "" || c.HTTPAuthBasicFile != "" {
		return nil
	}
	var out []exposed
	for _, l := range []exposed{{"http.listen", c.HTTPListen}, {"registry.listen", c.RegistryListen}} {
		if !loopback(l.addr) {
			out = append(out, l)
		}
	}
	return out
}

// checkListeners checks the keys of the REST and registry listeners together (DESIGN.md 7
// and 14): a listener other hosts reach needs authentication unless http.auth.insecure says
// to go without.
func (c Config) checkListeners() []error {
	var errs []error
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		errs = append(errs, fmt.Errorf("worker config %q: give both http.tls.cert and http.tls.key, or neither", "http.tls.cert"))
	}
	if n := countSet(c.ClusterTLSCert, c.ClusterTLSKey, c.ClusterTLSCA); n != 0 && n != 3 {
		errs = append(errs, fmt.Errorf("worker config %q: give cluster.tls.cert, cluster.tls.key and cluster.tls.ca together, or none", "cluster.tls.cert"))
	}
	if c.RegistryAuthReads && c.HTTPAuthToken == "" && c.HTTPAuthBasicFile == "" {
		errs = append(errs, fmt.Errorf("worker config %q: the registry's reads can need a user only once http.auth.token or http.auth.basic.file names the users", "registry.auth.reads"))
	}
	if c.HTTPAuthInsecure {
		return errs
	}
	for _, l := range c.exposedListeners() {
		_, port, _ := net.SplitHostPort(l.addr)
		errs = append(errs, fmt.Errorf("worker config %q: %s takes requests from other hosts and no REST authentication is configured: "+
			"set http.auth.token or http.auth.basic.file, listen on loopback (%s), or set http.auth.insecure=true to take unauthenticated requests",
			l.key, l.addr, net.JoinHostPort("127.0.0.1", port)))
	}
	return errs
}

// countSet counts the values that are not empty.
func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}

// loopback reports whether a listener bound at addr takes requests from this host only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkNodeID(v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '=' || r == ',' || r == '/' || r == 0x7f }) {
		return fmt.Errorf("%q: a node id may not contain spaces, control characters, '=', ',' or '/'", v)
	}
	return nil
}

func checkListen(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("%q is not an address such as :8083 or 10.0.0.5:8083: %v", v, err)
	}
	return nil
}

func checkAdvertise(v string) error {
	if v == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" || port == "" || port == "0" {
		return fmt.Errorf("%q is not a host:port other nodes can reach", v)
	}
	return nil
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 1s", v)
	}
	return d, nil
}

// parsePeers reads id=raft-host:port[=http-host:port],...
func parsePeers(v string) ([]coordinator.Peer, error) {
	var peers []coordinator.Peer
	seen := map[string]bool{}
	for _, item := range splitList(v) {
		parts := strings.Split(item, "=")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
			return nil, fmt.Errorf("%q is not id=raft-host:port[=http-host:port]", item)
		}
		p := coordinator.Peer{ID: parts[0], RaftAddr: parts[1]}
		if len(parts) == 3 {
			p.HTTPAddr = parts[2]
		}
		if err := checkNodeID(p.ID); err != nil {
			return nil, err
		}
		if err := checkAdvertise(p.RaftAddr); err != nil || p.RaftAddr == "" {
			return nil, fmt.Errorf("peer %s: raft address %q is not host:port", p.ID, p.RaftAddr)
		}
		if err := checkAdvertise(p.HTTPAddr); err != nil {
			return nil, fmt.Errorf("peer %s: http address %q is not host:port", p.ID, p.HTTPAddr)
		}
		if seen[p.ID] {
			return nil, fmt.Errorf("peer %s is listed twice", p.ID)
		}
		seen[p.ID] = true
		peers = append(peers, p)
	}
	return peers, nil
}

// resolveNodeID returns the node's id and records it in dataDir: the id given, else the one
// recorded there, else a new one. A data dir recorded under another id is refused: its Raft
// state belongs to that node.
func resolveNodeID(dataDir, given string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("worker config %q: create %s: %w", "data.dir", dataDir, err)
	}
	path := filepath.Join(dataDir, nodeIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		kept := strings.TrimSpace(string(data))
		if given != "" && given != kept {
			return "", fmt.Errorf("worker config %q: %s belongs to node %q, not %q: give --node-id %s or another data dir",
				"node.id", dataDir, kept, given, kept)
		}
		return kept, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := given
	if id == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id = "node-" + hex.EncodeToString(b)
	}
	if err := writeFileAtomic(path, id+"\n"); err != nil {
		return "", fmt.Errorf("record node id: %w", err)
	}
	return id, nil
}

// checkClusterID records clusterID in dataDir (created by resolveNodeID), or checks it against
// the one recorded there: a data dir of another cluster is refused, as its Raft state holds
// that cluster's members, connectors and schemas. A data dir without a record (a node of an
// older version) is taken as this cluster's.
func checkClusterID(dataDir, clusterID string) error {
	path := filepath.Join(dataDir, clusterIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if kept := strings.TrimSpace(string(data)); kept != clusterID {
			return fmt.Errorf("worker config %q: %s holds the state of cluster %q, not %q: give --cluster-id %s, or another data dir to start a node of %s",
				"cluster.id", dataDir, kept, clusterID, kept, clusterID)
		}
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read cluster id: %w", err)
	}
	if err := writeFileAtomic(path, clusterID+"\n"); err != nil {
		return fmt.Errorf("record cluster id: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file, so that a crash leaves the
// old file or the new one.
func writeFileAtomic(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// advertiseFor returns the address other nodes reach a listener bound at bound (as the
// listener reports it) under: bound itself when it names an IP, else this host's first
// non-loopback IPv4 address (loopback if it has none) with bound's port.
func advertiseFor(bound string) (string, error) {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return bound, nil
	}
	return net.JoinHostPort(hostIP(), port), nil
}

func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
