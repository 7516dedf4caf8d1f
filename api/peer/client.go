package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/internal/jsonerr"
	"github.com/mongorelay/mongorelay/registry"
)

// maxAnswer bounds an answer read from another node.
const maxAnswer = 16 << 20

// Client is how a node calls other nodes: heartbeats and registry writes go to the leader
// itself, joins and removals to any member (which forwards them). Its errors say what the
// other node said: *forward.NotLeaderError when the node called does not lead,
// ErrUnknownNode for a heartbeat of a node that is not a member, the registry's own errors
// for a registry write it refused.
type Client struct {
	http          *http.Client
	scheme        string
	authorization string
	secret        *httpauth.Secret
}

// ClientOption configures NewClient.
type ClientOption func(*Client)

// HTTPS makes the client call nodes over https, as nodes with http.tls.* serve their REST API
// (every node of a cluster alike); the client's transport must trust their certificates.
func HTTPS() ClientOption { return func(c *Client) { c.scheme = "https" } }

// Authorization sets the Authorization header of the calls to the REST API itself
// (RemoveNode, which takes an admin when http.auth.* is on). The node-to-node calls under
// Prefix do not carry it: they carry the cluster secret (ClusterSecret).
func Authorization(header string) ClientOption { return func(c *Client) { c.authorization = header } }

// ClusterSecret makes the calls under Prefix carry secret (cluster.secret), which the other
// nodes' receiving ends require when they have one.
func ClusterSecret(secret *httpauth.Secret) ClientOption {
	return func(c *Client) { c.secret = secret }
}

// NewClient returns a client sending through hc, over http unless HTTPS; give hc a timeout
// below the heartbeat interval.
func NewClient(hc *http.Client, opts ...ClientOption) *Client {
	c := &Client{http: hc, scheme: "http"}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Heartbeat sends hb to the leader at addr.
func (p *Client) Heartbeat(ctx context.Context, addr string, hb Heartbeat) (HeartbeatAck, error) {
	var ack HeartbeatAck
	err := p.call(ctx, http.MethodPost, addr, heartbeatPath, hb, &ack, false)
	return ack, err
}

// Join asks the member at addr to add a node; it forwards the request to the leader.
func (p *Client) Join(ctx context.Context, addr string, req JoinRequest) (JoinResponse, error) {
	var res JoinResponse
	err := p.call(ctx, http.MethodPost, addr, joinPath, req, &res, false)
	return res, err
}

// joinOnLeader sends a join the node at addr got to the leader at addr, one hop.
func (p *Client) joinOnLeader(ctx context.Context, addr string, req JoinRequest) (JoinResponse, error) {
	var res JoinResponse
	err := p.call(ctx, http.MethodPost, addr, joinPath, req, &res, true)
	return res, err
}

// RemoveNode asks the member at addr to remove node id from the cluster (mongorelay worker
// leave, through the REST API).
func (p *Client) RemoveNode(ctx context.Context, addr, id string) error {
	return p.call(ctx, http.MethodDelete, addr, "/cluster/nodes/"+url.PathEscape(id), nil, nil, false)
}

// RegistryWrite applies call on the leader at addr. It is sent as a forwarded request: if
// addr no longer leads it answers *forward.NotLeaderError rather than forwarding again.
func (p *Client) RegistryWrite(ctx context.Context, addr string, call registry.Call) (registry.Result, error) {
	var res registry.Result
	err := p.call(ctx, http.MethodPost, addr, registryPath, call, &res, true)
	return res, err
}

// SnapshotSignal has the leader at addr record an execute-snapshot signal. It is sent as a
// forwarded request: if addr no longer leads it answers *forward.NotLeaderError.
func (p *Client) SnapshotSignal(ctx context.Context, addr string, s SnapshotSignal) (SnapshotSignalAnswer, error) {
	var res SnapshotSignalAnswer
	err := p.call(ctx, http.MethodPost, addr, signalPath, s, &res, true)
	return res, err
}

func (p *Client) call(ctx context.Context, method, addr, path string, in, out any, forwarded bool) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.scheme+"://"+addr+path, body)
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", method, path, addr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(path, Prefix) {
		p.secret.Set(req.Header)
	} else if p.authorization != "" {
		req.Header.Set("Authorization", p.authorization)
	}
	if forwarded {
		req.Header.Set(forward.Header, "1")
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", method, path, addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s on %s: read answer: %w", method, path, addr, err)
	}
	switch {
	case resp.StatusCode < 300:
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s %s on %s: decode answer: %w", method, path, addr, err)
			}
		}
		return nil
	case resp.StatusCode == http.StatusMisdirectedRequest:
		var nl forward.NotLeaderError
		_ = json.Unmarshal(data, &nl)
		return &nl
	case strings.HasPrefix(path, Prefix) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden):
		var eb jsonerr.Body
		if json.Unmarshal(data, &eb) != nil || eb.Message == "" {
			eb.Message = string(data)
		}
		return fmt.Errorf("%s %s on %s: %w: HTTP %d: %s", method, path, addr, ErrRefused, resp.StatusCode, eb.Message)
	case resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%s %s on %s: %w", method, path, addr, ErrUnknownNode)
	case path == registryPath && resp.StatusCode == http.StatusBadRequest:
		var re registry.ErrorBody
		if err := json.Unmarshal(data, &re); err == nil && re.Kind != "" {
			return registry.DecodeError(re)
		}
	}
	var eb jsonerr.Body
	if json.Unmarshal(data, &eb) != nil || eb.Message == "" {
		eb.Message = string(data)
	}
	return fmt.Errorf("%s %s on %s: HTTP %d: %s", method, path, addr, resp.StatusCode, eb.Message)
}
