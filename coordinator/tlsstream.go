package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStream is Raft's network layer over mutual TLS (Config.RaftTLS): every connection, in
// and out, is a TLS session in which both ends show a certificate signed by the cluster's CA,
// so a process without one can neither send Raft messages to a node nor pose as one.
type tlsStream struct {
	ln        net.Listener // a TCP listener; handshakes happen in Accept's caller's goroutine
	config    *tls.Config
	advertise net.Addr
}

var _ raft.StreamLayer = (*tlsStream)(nil)

// namedAddr is an advertise address as configured, a host name kept as such: peers check a
// node's certificate against the host they dial, so Raft must record the name the certificate
// holds, not the IP it resolved to at start (a container's or pod's IP changes; its name
// does not).
type namedAddr string

func (a namedAddr) Network() string { return "tcp" }
func (a namedAddr) String() string  { return string(a) }

// listenTLS listens on addr for Raft over TLS with config, which must hold the node's
// certificate, the CAs its peers' certificates are signed by (RootCAs and ClientCAs) and
// ClientAuth tls.RequireAndVerifyClientCert. advertise, when not nil, is the address the
// other nodes reach it at.
func listenTLS(addr string, advertise net.Addr, config *tls.Config) (*tlsStream, error) {
	if config == nil || len(config.Certificates) == 0 && config.GetCertificate == nil {
		return nil, errors.New("raft over TLS needs the node's certificate")
	}
	if config.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("raft over TLS must verify its peers' certificates (tls.RequireAndVerifyClientCert)")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
		if tcp, ok := advertise.(*net.TCPAddr); !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("%s is not an address other nodes can reach: give the advertise address", advertise)
		}
	}
	return &tlsStream{ln: ln, config: config, advertise: advertise}, nil
}

// handshakeTimeout bounds a TLS handshake on the Raft port: a client that connects and says
// nothing is dropped.
const handshakeTimeout = 10 * time.Second

// Accept returns the next connection, a TLS server connection whose handshake (and so the
// check of the peer's certificate) runs on its first read, in the transport's goroutine for
// that connection, so that a slow or hostile client holds up no other.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeFirst{Conn: tls.Server(c, s.config)}, nil
}

// handshakeFirst is a server connection that completes its handshake, within
// handshakeTimeout, before its first read returns anything.
type handshakeFirst struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *handshakeFirst) Read(b []byte) (int, error) {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		c.err = c.HandshakeContext(ctx)
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

func (s *tlsStream) Close() error { return s.ln.Close() }

func (s *tlsStream) Addr() net.Addr { return s.advertise }

// Dial connects to the node at address and completes the TLS handshake, checking that the
// node's certificate is signed by the CA and names the host of address.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft address %q: %w", address, err)
	}
	config := s.config.Clone()
	config.ServerName = host
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: config}
	c, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raft over TLS to %s: %w", address, err)
	}
	return c, nil
}
