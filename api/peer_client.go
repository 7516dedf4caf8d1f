package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// PeerClient is how a node calls other nodes' REST APIs: heartbeats and registry writes go to
// the leader itself, joins and removals to any member (which forwards them). Its errors are
// the api's: *NotLeaderError when the node called does not lead, ErrUnknownNode for a
// heartbeat of a node that is not a member.
type PeerClient struct {
	http *http.Client
}

// NewPeerClient returns a client sending through hc; give hc a timeout below the heartbeat
// interval.
func NewPeerClient(hc *http.Client) *PeerClient { return &PeerClient{http: hc} }

// Heartbeat sends hb to the leader at addr.
func (p *PeerClient) Heartbeat(ctx context.Context, addr string, hb Heartbeat) (HeartbeatAck, error) {
	var ack HeartbeatAck
	err := p.call(ctx, http.MethodPost, addr, "/internal/heartbeat", hb, &ack, false)
	return ack, err
}

// Join asks the member at addr to add a node; it forwards the request to the leader.
func (p *PeerClient) Join(ctx context.Context, addr string, req JoinRequest) (JoinResponse, error) {
	var res JoinResponse
	err := p.call(ctx, http.MethodPost, addr, "/internal/join", req, &res, false)
	return res, err
}

// RemoveNode asks the member at addr to remove node id from the cluster.
func (p *PeerClient) RemoveNode(ctx context.Context, addr, id string) error {
	return p.call(ctx, http.MethodDelete, addr, "/cluster/nodes/"+url.PathEscape(id), nil, nil, false)
}

// RegistryWrite applies call on the leader at addr. It is sent as a forwarded request: if
// addr no longer leads it answers *NotLeaderError rather than forwarding again.
func (p *PeerClient) RegistryWrite(ctx context.Context, addr string, call RegistryCall) (RegistryResult, error) {
	var res RegistryResult
	err := p.call(ctx, http.MethodPost, addr, "/internal/registry", call, &res, true)
	return res, err
}

func (p *PeerClient) call(ctx context.Context, method, addr, path string, in, out any, forwarded bool) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", method, path, addr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if forwarded {
		req.Header.Set(forwardedHeader, "1")
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s on %s: %w", method, path, addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRequest))
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
		var nl NotLeaderError
		_ = json.Unmarshal(data, &nl)
		return &nl
	case resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%s %s on %s: %w", method, path, addr, ErrUnknownNode)
	case path == "/internal/registry" && resp.StatusCode == http.StatusBadRequest:
		var re registryErrorBody
		if err := json.Unmarshal(data, &re); err == nil && re.Kind != "" {
			return decodeRegistryError(re)
		}
	}
	var eb errorBody
	if json.Unmarshal(data, &eb) != nil || eb.Message == "" {
		eb.Message = string(data)
	}
	return fmt.Errorf("%s %s on %s: HTTP %d: %s", method, path, addr, resp.StatusCode, eb.Message)
}
