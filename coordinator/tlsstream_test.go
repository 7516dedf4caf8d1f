package coordinator

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mongorelay/mongorelay/internal/testservers"
)

// mutualTLS is the Raft TLS of a node whose certificate certs' CA signed, as the worker builds
// it from cluster.tls.*.
func mutualTLS(t *testing.T, certs testservers.Certs) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
}

// TestRaftOverMutualTLS: nodes with certificates of the cluster's CA form a cluster over TLS;
// garbage, a plain TCP Raft client and a Raft client with another CA's certificate reach
// nothing: the configuration and the state stay as they were.
func TestRaftOverMutualTLS(t *testing.T) {
	ours, err := testservers.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := testservers.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	cfg := c.config("n1", t.TempDir(), freeAddr(t))
	cfg.Bootstrap, cfg.RaftTLS = true, mutualTLS(t, ours)
	leader := c.start(cfg)
	c.waitLeader(10 * time.Second)
	ctx := ctxT(t)

	cfg2 := c.config("n2", t.TempDir(), freeAddr(t))
	cfg2.RaftTLS = mutualTLS(t, ours)
	n2 := c.start(cfg2)
	if _, err := leader.AddNode(ctx, "n2", n2.RaftAddr(), "http-n2"); err != nil {
		t.Fatal(err)
	}
	// Until the leader has recorded n2's heartbeats' address, the state still moves.
	waitFor(t, 10*time.Second, "n2 to apply the leader's state over TLS", func() bool {
		info, ok := n2.State().Node("n2")
		return ok && info.HTTPAddr == "http-n2" && n2.State().Index() == leader.State().Index()
	})
	before, err := leader.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	index := leader.State().Index()

	// Garbage on the Raft port.
	conn, err := net.DialTimeout("tcp", leader.RaftAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("\x00\x01garbage\x16\x03\x01 not a handshake"))
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = conn.Read(make([]byte, 64))
	conn.Close()

	// Raft's AppendEntries over plain TCP, and over TLS with another CA's certificate.
	forged := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")},
		Term: leader.Term() + 10, Leader: []byte("127.0.0.1:1"), PrevLogEntry: index, LeaderCommitIndex: index + 5,
		Entries: []*raft.Log{{Index: index + 1, Term: leader.Term() + 10, Type: raft.LogConfiguration, Data: []byte("{}")}}}
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, time.Second, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.AppendEntries("n1", raft.ServerAddress(leader.RaftAddr()), forged, &raft.AppendEntriesResponse{}); err == nil {
		t.Error("an AppendEntries over plain TCP was answered")
	}
	stranger, err := listenTLS("127.0.0.1:0", nil, mutualTLS(t, theirs))
	if err != nil {
		t.Fatal(err)
	}
	strangerTrans := raft.NewNetworkTransport(stranger, 1, time.Second, os.Stderr)
	defer strangerTrans.Close()
	if err := strangerTrans.AppendEntries("n1", raft.ServerAddress(leader.RaftAddr()), forged, &raft.AppendEntriesResponse{}); err == nil {
		t.Error("an AppendEntries with another CA's certificate was answered")
	}

	time.Sleep(500 * time.Millisecond)
	after, err := leader.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	voters := func(ms []Member) (out []string) {
		for _, m := range ms {
			out = append(out, fmt.Sprint(m.ID, m.RaftAddr, m.Voter))
		}
		return out
	}
	if !leader.IsLeader() || !slices.Equal(voters(after), voters(before)) || leader.State().Index() != index {
		t.Errorf("after the forged calls: leader %v, members %+v (were %+v), index %d (was %d)",
			leader.IsLeader(), after, before, leader.State().Index(), index)
	}
}

func TestListenTLSNeedsPeerVerification(t *testing.T) {
	certs, err := testservers.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	noClientAuth := mutualTLS(t, certs)
	noClientAuth.ClientAuth = tls.RequestClientCert
	for name, config := range map[string]*tls.Config{"no config": nil, "no certificate": {ClientAuth: tls.RequireAndVerifyClientCert},
		"peers not verified": noClientAuth} {
		if s, err := listenTLS("127.0.0.1:0", nil, config); err == nil {
			s.Close()
			t.Errorf("%s: listening", name)
		}
	}
}

// TestRaftOverTLSRecordsTheAdvertisedName: a node advertising a host name is recorded under
// that name, not the IP it resolved to at start, and its peers reach it there, checking its
// certificate against the name: a container's IP changes across restarts, its name does not.
func TestRaftOverTLSRecordsTheAdvertisedName(t *testing.T) {
	certs, err := testservers.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	named := func(id string) Config {
		listen := freeAddr(t)
		_, port, _ := net.SplitHostPort(listen)
		cfg := c.config(id, t.TempDir(), listen)
		cfg.RaftAdvertise, cfg.RaftTLS = net.JoinHostPort("localhost", port), mutualTLS(t, certs)
		return cfg
	}
	cfg := named("n1")
	cfg.Bootstrap = true
	leader := c.start(cfg)
	c.waitLeader(10 * time.Second)
	n2 := c.start(named("n2"))
	for _, n := range []*Node{leader, n2} {
		if host, _, _ := net.SplitHostPort(n.RaftAddr()); host != "localhost" {
			t.Errorf("raft address %q, want the advertised name localhost", n.RaftAddr())
		}
	}
	if _, err := leader.AddNode(ctxT(t), "n2", n2.RaftAddr(), "http-n2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n2 to apply the leader's state over TLS to localhost", func() bool {
		info, ok := n2.State().Node("n2")
		return ok && info.HTTPAddr == "http-n2" && n2.State().Index() == leader.State().Index()
	})
}
