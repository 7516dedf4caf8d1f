package worker

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestOpenListeners: the certificate, the CA and the users file are read when the node
// starts; a node with a certificate calls the others over https, trusting http.tls.ca; a
// problem names its key.
func TestOpenListeners(t *testing.T) {
	dir := t.TempDir()
	certs := testenv.NewCerts(t)
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice: pw-alice,admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	l, err := Config{}.openListeners()
	if err != nil || l.tls != nil || l.users.Enabled() || l.scheme != "http" || l.client == nil {
		t.Errorf("no keys: %+v, %v; want plain HTTP for anyone", l, err)
	}
	l, err = Config{HTTPTLSCert: certs.ServerCert, HTTPTLSKey: certs.ServerKey, HTTPTLSCA: certs.CA, HTTPAuthBasicFile: users}.openListeners()
	if err != nil || l.tls == nil || !l.users.Enabled() || l.scheme != "https" || l.client.Transport == nil {
		t.Errorf("TLS and users: %+v, %v; want https and users", l, err)
	}
	l, err = Config{ClusterSecret: "cluster-secret-0123456789", ClusterTLSCert: certs.ServerCert, ClusterTLSKey: certs.ServerKey, ClusterTLSCA: certs.CA}.openListeners()
	if err != nil || !l.secret.Enabled() || l.raft == nil || l.raft.ClientAuth != tls.RequireAndVerifyClientCert || l.raft.ClientCAs == nil || l.raft.RootCAs == nil {
		t.Errorf("cluster.secret and cluster.tls.*: %+v, %v; want the secret and Raft's mutual TLS", l, err)
	}
	if l.restTLS != nil {
		t.Error("a REST listener without http.tls.* serves TLS")
	}
	l, err = Config{HTTPTLSCert: certs.ServerCert, HTTPTLSKey: certs.ServerKey, HTTPTLSCA: certs.CA,
		ClusterTLSCert: certs.ServerCert, ClusterTLSKey: certs.ServerKey, ClusterTLSCA: certs.CA}.openListeners()
	if err != nil || !l.secret.Enabled() || l.restTLS.ClientAuth != tls.VerifyClientCertIfGiven || l.restTLS.ClientCAs == nil ||
		l.tls.ClientAuth != tls.NoClientCert || len(l.client.Transport.(*http.Transport).TLSClientConfig.Certificates) != 1 {
		t.Errorf("http.tls.* and cluster.tls.*: %+v, %v; want the REST listener asking the nodes for their certificates, "+
			"the registry's not, and the node showing its own", l, err)
	}

	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"a missing users file", Config{HTTPAuthBasicFile: filepath.Join(dir, "nope")}, `"http.auth.basic.file"`},
		{"a cluster key that is not the certificate's", Config{ClusterTLSCert: certs.ServerCert, ClusterTLSKey: certs.CA, ClusterTLSCA: certs.CA}, `"cluster.tls.cert"`},
		{"a cluster CA file without certificates", Config{ClusterTLSCert: certs.ServerCert, ClusterTLSKey: certs.ServerKey, ClusterTLSCA: users},
			`"cluster.tls.ca"`},
		{"a short cluster secret", Config{ClusterSecret: "short"}, `"cluster.secret"`},
		{"a key that is not the certificate's", Config{HTTPTLSCert: certs.ServerCert, HTTPTLSKey: certs.CA}, `"http.tls.cert"`},
		{"a CA file without certificates", Config{HTTPTLSCert: certs.ServerCert, HTTPTLSKey: certs.ServerKey, HTTPTLSCA: users},
			`"http.tls.ca": ` + users + " holds no PEM certificate"},
	} {
		if _, err := tt.cfg.openListeners(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
}

// TestWarnListeners: a node told to take unauthenticated requests from other hosts says so
// once at start, as does one on loopback that other nodes are told to reach elsewhere; one on
// loopback or with users and cluster.secret says nothing; a cluster node with users but no
// cluster.secret warns that its node-to-node routes take anyone.
func TestWarnListeners(t *testing.T) {
	loopbackREST := Config{HTTPListen: "127.0.0.1:8083", RegistryListen: "127.0.0.1:8081"}
	withAdvertise, withPeers, otherPeer := loopbackREST, loopbackREST, loopbackREST
	withAdvertise.HTTPAdvertise = "10.0.0.5:8083"
	withPeers.NodeID, withPeers.Peers = "n1", []coordinator.Peer{{ID: "n1", RaftAddr: "10.0.0.5:8300", HTTPAddr: "10.0.0.5:8083"}}
	otherPeer.NodeID, otherPeer.Peers = "n2", withPeers.Peers
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // "": no warning
	}{
		{"unauthenticated on every interface", Config{HTTPListen: ":8083", RegistryListen: "127.0.0.1:8081", HTTPAuthInsecure: true}, `listeners="[http.listen=:8083]"`},
		{"on loopback", loopbackREST, ""},
		{"with users and cluster.secret", Config{HTTPListen: ":8083", RegistryListen: ":8081", HTTPAuthToken: "0123456789abcdef0123",
			ClusterSecret: "fedcba98765432100123"}, ""},
		{"with users, without cluster.secret", Config{HTTPListen: ":8083", RegistryListen: ":8081", HTTPAuthToken: "0123456789abcdef0123"},
			"cluster.secret is not set"},
		{"with users and mutual TLS between the nodes", Config{HTTPListen: ":8083", RegistryListen: ":8081", HTTPAuthToken: "0123456789abcdef0123",
			HTTPTLSCert: "c.pem", ClusterTLSCert: "n.pem"}, ""},
		{"a standalone process with users", Config{ClusterID: standaloneID, HTTPListen: ":8083", RegistryListen: ":8081",
			HTTPAuthToken: "0123456789abcdef0123"}, ""},
		{"on loopback, advertised elsewhere", withAdvertise, "advertised=10.0.0.5:8083"},
		{"on loopback, its peers entry elsewhere", withPeers, "advertised=10.0.0.5:8083"},
		{"on loopback, another node's peers entry elsewhere", otherPeer, ""},
	} {
		var buf bytes.Buffer
		tt.cfg.warnListeners(slog.New(slog.NewTextHandler(&buf, nil)))
		got := strings.Count(buf.String(), "level=WARN")
		if (tt.want == "" && got != 0) || (tt.want != "" && (got != 1 || !strings.Contains(buf.String(), tt.want))) {
			t.Errorf("%s: logged %q, want one warning with %q (none if empty)", tt.name, buf.String(), tt.want)
		}
	}
}
