package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
)

// fakeNode is a leader, or a follower naming leaderHTTP.
type fakeNode struct {
	mu         sync.Mutex
	leads      bool
	leaderHTTP string
	heartbeats []Heartbeat
	registry   registry.Writer
}

func (f *fakeNode) notLeader() error {
	return &forward.NotLeaderError{LeaderID: "leader", LeaderHTTP: f.leaderHTTP}
}

func (f *fakeNode) Heartbeat(_ context.Context, hb Heartbeat) (HeartbeatAck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leads {
		return HeartbeatAck{}, f.notLeader()
	}
	if hb.NodeID == "stranger" {
		return HeartbeatAck{}, fmt.Errorf("heartbeat: %w", ErrUnknownNode)
	}
	f.heartbeats = append(f.heartbeats, hb)
	return HeartbeatAck{Index: 42}, nil
}

func (f *fakeNode) Join(_ context.Context, req JoinRequest) (JoinResponse, error) {
	if !f.leads {
		return JoinResponse{}, f.notLeader()
	}
	if req.ClusterID != "" && req.ClusterID != "ours" {
		return JoinResponse{}, fmt.Errorf("%w: cluster %q is not ours", ErrRefused, req.ClusterID)
	}
	return JoinResponse{NodeID: req.NodeID}, nil
}

func (f *fakeNode) RegistryWrite(ctx context.Context, call registry.Call) (registry.Result, error) {
	if !f.leads {
		return registry.Result{}, f.notLeader()
	}
	return registry.Apply(ctx, f.registry, call)
}

// SnapshotSignal refuses a signal naming no collection, as a node refuses one it cannot take.
func (f *fakeNode) SnapshotSignal(_ context.Context, s SnapshotSignal) (SnapshotSignalAnswer, error) {
	if !f.leads {
		return SnapshotSignalAnswer{}, f.notLeader()
	}
	if len(s.Collections) == 0 {
		return SnapshotSignalAnswer{Refused: "no collection"}, nil
	}
	return SnapshotSignalAnswer{ID: 7}, nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func serveNode(t *testing.T, n *fakeNode, c *Client) string {
	t.Helper()
	return serveNodeWithSecret(t, n, c, nil)
}

func serveNodeWithSecret(t *testing.T, n *fakeNode, c *Client, secret *httpauth.Secret) string {
	t.Helper()
	srv := httptest.NewServer(NewHandler(n, c, secret, time.Second, quiet))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestClientAndReceiver(t *testing.T) {
	reg, err := registry.New(context.Background(), registrytest.NewStore(), registry.Logger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	p := NewClient(&http.Client{Timeout: 5 * time.Second})
	leader := &fakeNode{leads: true, registry: reg}
	leaderAddr := serveNode(t, leader, p)
	followerAddr := serveNode(t, &fakeNode{leaderHTTP: leaderAddr}, p)
	ctx := context.Background()

	ack, err := p.Heartbeat(ctx, leaderAddr, Heartbeat{NodeID: "n2", Tasks: []TaskReport{{Connector: "c", Task: "t", State: "RUNNING"}}})
	if err != nil || ack.Index != 42 || len(leader.heartbeats) != 1 || leader.heartbeats[0].Tasks[0].State != "RUNNING" {
		t.Errorf("heartbeat: ack %+v, err %v, recorded %+v", ack, err, leader.heartbeats)
	}
	_, err = p.Heartbeat(ctx, followerAddr, Heartbeat{NodeID: "n2"})
	if nl, ok := errors.AsType[*forward.NotLeaderError](err); !ok || nl.LeaderHTTP != leaderAddr {
		t.Errorf("heartbeat to a follower: %v, want NotLeaderError naming the leader (heartbeats are not forwarded)", err)
	}
	if _, err := p.Heartbeat(ctx, leaderAddr, Heartbeat{NodeID: "stranger"}); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("heartbeat of a non-member: %v, want ErrUnknownNode", err)
	}
	if res, err := p.Join(ctx, followerAddr, JoinRequest{NodeID: "n4", RaftAddr: "r:1"}); err != nil || res.NodeID != "n4" {
		t.Errorf("join through a follower: %+v, %v", res, err)
	}

	if ans, err := p.SnapshotSignal(ctx, leaderAddr, SnapshotSignal{Connector: "c", Collections: []string{"db.a"}, Signal: `"s"`}); err != nil || ans.ID != 7 {
		t.Errorf("snapshot signal on the leader: %+v, %v", ans, err)
	}
	if ans, err := p.SnapshotSignal(ctx, leaderAddr, SnapshotSignal{Connector: "c", Signal: `"s"`}); err != nil || ans.Refused == "" {
		t.Errorf("a refused snapshot signal: %+v, %v, want the refusal in the answer", ans, err)
	}
	if _, err := p.SnapshotSignal(ctx, followerAddr, SnapshotSignal{Connector: "c", Collections: []string{"db.a"}}); !errors.Is(err, forward.ErrNotLeader) {
		t.Errorf("snapshot signal to a follower: %v, want NotLeaderError (signals are sent to the leader)", err)
	}

	schema := `{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}`
	res, err := p.RegistryWrite(ctx, leaderAddr, registry.Call{Op: registry.OpRegister, Subject: "s-value", Schema: schema})
	if err != nil || res.ID != 1 {
		t.Fatalf("register on the leader: %+v, %v", res, err)
	}
	_, err = p.RegistryWrite(ctx, leaderAddr, registry.Call{Op: registry.OpRegister, Subject: "s-value",
		Schema: `{"type":"record","name":"r","fields":[{"name":"a","type":"string"}]}`})
	if ie, ok := errors.AsType[*registry.IncompatibleError](err); !ok || !errors.Is(err, registry.ErrIncompatible) || ie.Subject != "s-value" {
		t.Errorf("incompatible schema: %v, want the registry's IncompatibleError back", err)
	}
	if _, err := p.RegistryWrite(ctx, leaderAddr, registry.Call{Op: registry.OpDeleteSubject, Subject: "nope"}); !errors.Is(err, registry.ErrSubjectNotFound) {
		t.Errorf("delete a missing subject: %v, want ErrSubjectNotFound", err)
	}
	// A registry write sent to a follower is a forwarded request: 421, not another hop.
	if _, err := p.RegistryWrite(ctx, followerAddr, registry.Call{Op: registry.OpRegister, Subject: "s-value", Schema: schema}); err == nil {
		t.Error("a registry write to a follower was applied")
	} else if _, ok := errors.AsType[*forward.NotLeaderError](err); !ok {
		t.Errorf("registry write to a follower: %v, want NotLeaderError", err)
	}
}

// TestClientOverHTTPSWithCredentials: with HTTPS the client calls https; the admin's
// credentials go to the REST API (RemoveNode), never to the node-to-node routes.
func TestClientOverHTTPSWithCredentials(t *testing.T) {
	seen := map[string]string{} // path → Authorization
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Get("Authorization")
		mu.Unlock()
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	p := NewClient(srv.Client(), HTTPS(), Authorization("Bearer admin-token"))
	addr := strings.TrimPrefix(srv.URL, "https://")
	if err := p.RemoveNode(context.Background(), addr, "n3"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Heartbeat(context.Background(), addr, Heartbeat{NodeID: "n1"}); err != nil {
		t.Fatal(err)
	}
	if seen["/cluster/nodes/n3"] != "Bearer admin-token" || seen[heartbeatPath] != "" {
		t.Errorf("Authorization sent: %v, want it on the REST call only", seen)
	}
}

// TestReceiverBodyLimit: a body over the limit is refused 413 on the node-to-node routes too.
func TestReceiverBodyLimit(t *testing.T) {
	addr := serveNode(t, &fakeNode{leads: true}, NewClient(http.DefaultClient))
	resp, err := http.Post("http://"+addr+heartbeatPath, "application/json", strings.NewReader(`{"node_id":"`+strings.Repeat("x", maxRequest)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a heartbeat over the limit = %d, want 413", resp.StatusCode)
	}
}

func mustSecret(t *testing.T, s string) *httpauth.Secret {
	t.Helper()
	secret, err := httpauth.NewSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestReceiverNeedsClusterSecret: with cluster.secret every node-to-node route refuses a call
// without it (401) or with another (403), before the node sees it; the client that carries it
// gets through, even to a follower that forwards a join; a refusal is ErrRefused.
func TestReceiverNeedsClusterSecret(t *testing.T) {
	secret := mustSecret(t, "the-cluster-secret-0123")
	good := NewClient(&http.Client{Timeout: 5 * time.Second}, ClusterSecret(secret))
	leader := &fakeNode{leads: true}
	leaderAddr := serveNodeWithSecret(t, leader, good, secret)
	followerAddr := serveNodeWithSecret(t, &fakeNode{leaderHTTP: leaderAddr}, good, secret)

	for _, path := range []string{heartbeatPath, joinPath, registryPath} {
		for _, tt := range []struct {
			name, secret string
			want         int
		}{
			{"without the secret", "", http.StatusUnauthorized},
			{"with another secret", "another-secret-of-length", http.StatusForbidden},
		} {
			req, _ := http.NewRequest(http.MethodPost, "http://"+leaderAddr+path, strings.NewReader(`{"node_id":"intruder","raft_addr":"r:1"}`))
			req.Header.Set("Content-Type", "application/json")
			if tt.secret != "" {
				req.Header.Set(httpauth.SecretHeader, tt.secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(body), "cluster") || strings.Contains(string(body), "the-cluster-secret") {
				t.Errorf("POST %s %s = %d %s, want %d naming the cluster secret, without it", path, tt.name, resp.StatusCode, body, tt.want)
			}
		}
	}
	if len(leader.heartbeats) != 0 {
		t.Errorf("refused heartbeats reached the node: %+v", leader.heartbeats)
	}

	ctx := context.Background()
	if _, err := good.Heartbeat(ctx, leaderAddr, Heartbeat{NodeID: "n2"}); err != nil {
		t.Errorf("heartbeat with the secret: %v", err)
	}
	if res, err := good.Join(ctx, followerAddr, JoinRequest{ClusterID: "ours", NodeID: "n4", RaftAddr: "r:4"}); err != nil || res.NodeID != "n4" {
		t.Errorf("join through a follower with the secret: %+v, %v", res, err)
	}
	if _, err := good.Join(ctx, followerAddr, JoinRequest{ClusterID: "theirs", NodeID: "n5", RaftAddr: "r:5"}); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), `"theirs"`) {
		t.Errorf("join of another cluster through a follower: %v, want ErrRefused naming the cluster", err)
	}
	for name, c := range map[string]*Client{
		"without the secret":  NewClient(http.DefaultClient),
		"with another secret": NewClient(http.DefaultClient, ClusterSecret(mustSecret(t, "another-secret-of-length"))),
	} {
		if _, err := c.Heartbeat(ctx, leaderAddr, Heartbeat{NodeID: "n2"}); !errors.Is(err, ErrRefused) {
			t.Errorf("heartbeat %s: %v, want ErrRefused", name, err)
		}
		if _, err := c.Join(ctx, followerAddr, JoinRequest{ClusterID: "ours", NodeID: "n6", RaftAddr: "r:6"}); !errors.Is(err, ErrRefused) {
			t.Errorf("join %s: %v, want ErrRefused", name, err)
		}
	}
}
