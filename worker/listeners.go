package worker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/api/registryapi"
	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/internal/httpserve"
)

// This file secures the node's listeners, the REST API and the schema registry (DESIGN.md 7
// and 14), and the node's own calls to other nodes' REST APIs.

// nodeCallTimeout bounds a call to another node: a heartbeat, a join, a forwarded write.
const nodeCallTimeout = 30 * time.Second

// listeners is how the node's REST and registry listeners serve and whom they take.
type listeners struct {
	tls *tls.Config // nil: plain HTTP
	// restTLS is the REST listener's: tls, asking for the certificates of the cluster's CA
	// (cluster.tls.ca) from the nodes that have one.
	restTLS *tls.Config
	users   *httpauth.Users  // nil: anyone
	secret  *httpauth.Secret // cluster.secret; nil: the node-to-node calls take anyone
	raft    *tls.Config      // Raft's mutual TLS (cluster.tls.*); nil: plain TCP
	// client calls other nodes' REST APIs, over scheme: the nodes of a cluster all serve
	// HTTPS or all plain HTTP.
	client *http.Client
	scheme string
}

// openListeners reads the certificates and users the listeners' keys name.
func (c Config) openListeners() (listeners, error) {
	var l listeners
	var err error
	if l.users, err = httpauth.Load(c.HTTPAuthToken, c.HTTPAuthBasicFile); err != nil {
		return l, fmt.Errorf("worker config %q: %w", "http.auth.basic.file", err)
	}
	if l.secret, err = httpauth.NewSecret(c.ClusterSecret); err != nil {
		return l, fmt.Errorf("worker config %q: %w", "cluster.secret", err)
	}
	if l.raft, err = c.raftTLS(); err != nil {
		return l, err
	}
	l.client, l.scheme = &http.Client{Timeout: nodeCallTimeout}, "http"
	if c.HTTPTLSCert == "" {
		return l, nil
	}
	cert, err := tls.LoadX509KeyPair(c.HTTPTLSCert, c.HTTPTLSKey)
	if err != nil {
		return l, fmt.Errorf("worker config %q: load %s and its key %s: %w", "http.tls.cert", c.HTTPTLSCert, c.HTTPTLSKey, err)
	}
	l.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	trust, err := httpserve.ClientTLS(c.HTTPTLSCA)
	if err != nil {
		return l, fmt.Errorf("worker config %q: %w", "http.tls.ca", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = trust
	l.client.Transport, l.scheme = transport, "https"
	l.restTLS = l.tls
	if l.raft != nil {
		// Mutual TLS between the nodes on the REST listener too: a node shows its
		// cluster.tls.cert when it calls another, which takes a certificate of the cluster's CA
		// in place of cluster.secret on /internal/ and forwarded writes. Users show none.
		l.restTLS = l.tls.Clone()
		l.restTLS.ClientCAs, l.restTLS.ClientAuth = l.raft.ClientCAs, tls.VerifyClientCertIfGiven
		trust.Certificates = l.raft.Certificates
		l.secret = l.secret.WithPeerCertificates()
	}
	return l, nil
}

// raftTLS returns the mutual TLS Raft runs over (cluster.tls.*), or nil for plain TCP.
func (c Config) raftTLS() (*tls.Config, error) {
	if c.ClusterTLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.ClusterTLSCert, c.ClusterTLSKey)
	if err != nil {
		return nil, fmt.Errorf("worker config %q: load %s and its key %s: %w", "cluster.tls.cert", c.ClusterTLSCert, c.ClusterTLSKey, err)
	}
	trust, err := httpserve.ClientTLS(c.ClusterTLSCA)
	if err != nil {
		return nil, fmt.Errorf("worker config %q: %w", "cluster.tls.ca", err)
	}
	trust.MinVersion = tls.VersionTLS13
	trust.Certificates = []tls.Certificate{cert}
	trust.ClientCAs = trust.RootCAs
	trust.ClientAuth = tls.RequireAndVerifyClientCert
	return trust, nil
}

// peerClient is how the node calls other nodes: over the scheme they all serve.
func (l listeners) peerClient() *peer.Client {
	opts := []peer.ClientOption{peer.ClusterSecret(l.secret)}
	if l.scheme == "https" {
		opts = append(opts, peer.HTTPS())
	}
	return peer.NewClient(l.client, opts...)
}

// warnListeners warns, once, of the listeners that take unauthenticated requests from other
// hosts (the config checks let them through only with http.auth.insecure=true), and of a REST
// API on loopback that other nodes are told to reach elsewhere: a cluster whose nodes relied
// on the default :8083 before it became loopback without users, unless a local proxy serves
// that address; and of a cluster node with users but no cluster.secret, whose node-to-node
// routes take anyone.
func (c Config) warnListeners(log *slog.Logger) {
	if exposed := c.exposedListeners(); len(exposed) > 0 {
		var addrs []string
		for _, l := range exposed {
			addrs = append(addrs, l.key+"="+l.addr)
		}
		log.Warn("listening for unauthenticated requests from other hosts (http.auth.insecure=true): anyone who reaches the node "+
			"may create, change and delete connectors and schemas; set http.auth.token or http.auth.basic.file", "listeners", addrs)
	}
	users := c.HTTPAuthToken != "" || c.HTTPAuthBasicFile != ""
	mutualTLS := c.ClusterTLSCert != "" && c.HTTPTLSCert != "" // the nodes show their certificates instead
	if users && c.ClusterSecret == "" && !mutualTLS && c.ClusterID != standaloneID && !loopback(c.HTTPListen) {
		log.Warn("cluster.secret is not set: the node-to-node routes (/internal/: joins, heartbeats, registry writes) take "+
			"anyone who reaches the REST API, whatever http.auth.* says; set cluster.secret, the same on every node", "http_listen", c.HTTPListen)
	}
	if !loopback(c.HTTPListen) {
		return
	}
	advertised := c.HTTPAdvertise
	for _, p := range c.Peers {
		if advertised == "" && p.ID == c.NodeID && c.NodeID != "" {
			advertised = p.HTTPAddr
		}
	}
	if advertised != "" && !loopback(advertised) {
		log.Warn("the REST API listens on loopback, where other nodes cannot reach it at the address they are given: "+
			"give http.listen an address they reach (with http.auth.token or http.auth.basic.file, the default is :8083)",
			"http_listen", c.HTTPListen, "advertised", advertised)
	}
}

// serveRegistry serves reg's Confluent-compatible API on addr (registry.listen).
func serveRegistry(addr string, reg registryapi.SchemaRegistry, l listeners, authReads bool, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("worker config %q: listen on %s: %w (choose a free address)", "registry.listen", addr, err)
	}
	log.Info("schema registry listening", "addr", ln.Addr().String(), "tls", l.tls != nil, "auth", l.users.Enabled(), "auth_reads", authReads)
	h := registryapi.NewServer(reg, log, registryapi.WithAuth(l.users, authReads))
	return httpserve.Serve(ln, h, l.tls, "schema registry", log), nil
}
