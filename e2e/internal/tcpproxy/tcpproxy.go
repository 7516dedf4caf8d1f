// Package tcpproxy is a TCP forwarder a test puts between clients and a server so that it can
// cut the network between them: Cut resets every open connection and leaves new ones silent
// (accepted, never forwarded, never answered), as a network that drops every packet would.
package tcpproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the connection to the target that each accepted connection opens.
const dialTimeout = 5 * time.Second

// Proxy listens on a loopback port and forwards each connection to its target, until Cut.
// Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	mu     sync.Mutex
	cut    bool
	closed bool
	// open are the connections in use, both ends of the forwarded ones: Cut resets them.
	open map[net.Conn]struct{}
	// held are the connections accepted while cut: silent until their client gives up or
	// the proxy closes.
	held map[net.Conn]struct{}
}

// Start listens on 127.0.0.1 on a free port and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcpproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, open: map[net.Conn]struct{}{}, held: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address clients dial instead of the target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut resets every open connection (each end sees ECONNRESET, as from a network that lost its
// state) and, until Restore, accepts new connections without forwarding or answering a byte:
// a client notices only through its own timeouts, as it would behind a black hole.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.open {
		reset(c)
		delete(p.open, c)
	}
}

// Restore forwards new connections again. The connections accepted during the cut stay
// silent: their clients sent into the black hole and must give up on them, as they would
// on a peer that vanished without a word.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Close stops listening, resets every connection, held ones included, and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for _, set := range []map[net.Conn]struct{}{p.open, p.held} {
		for c := range set {
			reset(c)
			delete(set, c)
		}
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		switch {
		case p.closed:
			reset(c)
		case p.cut:
			p.held[c] = struct{}{}
			p.wg.Go(func() { p.hold(c) })
		default:
			p.open[c] = struct{}{}
			p.wg.Go(func() { p.forward(c) })
		}
		p.mu.Unlock()
	}
}

// hold reads and drops what the client sends until it closes the connection or the proxy
// resets it.
func (p *Proxy) hold(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
	p.mu.Lock()
	delete(p.held, c)
	p.mu.Unlock()
	_ = c.Close()
}

// forward connects client to the target and copies both ways until both directions end or
// a Cut resets them.
func (p *Proxy) forward(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, dialTimeout)
	p.mu.Lock()
	_, stillOpen := p.open[client] // a Cut during the dial has reset client
	switch {
	case err != nil:
		delete(p.open, client)
		if stillOpen {
			reset(client) // as a server that refused
		}
	case !stillOpen:
		reset(server)
	default:
		p.open[server] = struct{}{}
	}
	p.mu.Unlock()
	if err != nil || !stillOpen {
		return
	}
	var both sync.WaitGroup
	both.Go(func() { pipe(server, client) })
	pipe(client, server)
	both.Wait()
	p.mu.Lock()
	delete(p.open, client)
	delete(p.open, server)
	p.mu.Unlock()
	_ = client.Close()
	_ = server.Close()
}

// pipe copies src to dst and passes on src's end of stream (a half close). A reset of src
// resets dst too; a connection the proxy closed (Cut, Close) ends the copy and nothing else.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	switch {
	case errors.Is(err, net.ErrClosed):
	case err != nil:
		reset(dst)
	default:
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
}

// reset closes c with an RST rather than a FIN: linger 0 drops what is unsent.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
