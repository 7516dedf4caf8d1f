//go:build e2e

package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestNodeToNodeSecurity is issue 16's acceptance for the calls between nodes, on a 3-node
// cluster with cluster.secret (from MONGORELAY_CLUSTER_SECRET), Raft over mutual TLS
// (cluster.tls.*), an admin token and a read-only user: every /internal/ route without the
// secret (401) or with another (403), a join naming a voter's Raft address, a forged heartbeat,
// a forwarded write without the secret, a DELETE /cluster/nodes and a registry hard delete
// without an admin, garbage and Raft's AppendEntries sent straight to the Raft port (over plain
// TCP), a node of another cluster.id and a node with another secret: each is refused, and the
// members, the leader, its term, the Raft index of the cluster state and the assignments of a
// running connector stay as they were. The admin's calls succeed; the read-only user reads.
func TestNodeToNodeSecurity(t *testing.T) {
	kafka := testenv.Kafka(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	clusterID := "e2ena-" + run
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-nodeauth")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	certs := testenv.NewCerts(t)
	usersFile := filepath.Join(t.TempDir(), "users.properties")
	if err := os.WriteFile(usersFile, []byte("viewer: pw-viewer-"+run+",read-only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret, token := "e2e-cluster-secret-"+run, "e2e-admin-token-"+run
	t.Setenv("MONGORELAY_CLUSTER_SECRET", secret)
	t.Setenv("MONGORELAY_HTTP_AUTH_TOKEN", token)
	viewer, admin := basicAuthOf("viewer", "pw-viewer-"+run), "Bearer "+token
	tlsArgs := []string{"--cluster-tls-cert", certs.ServerCert, "--cluster-tls-key", certs.ServerKey, "--cluster-tls-ca", certs.CA}

	var nodes []*node
	var peers []string
	for i := 1; i <= 3; i++ {
		n := newNode(t, fmt.Sprintf("n%d", i), logDir)
		nodes = append(nodes, n)
		peers = append(peers, n.id+"="+n.raft+"="+n.http)
	}
	for i, n := range nodes {
		n.args = append(nodeArgs(n, clusterID, kafka, "--peers", strings.Join(peers, ","), "--http-auth-basic-file", usersFile), tlsArgs...)
		if i == 0 {
			n.args = append(n.args, "--bootstrap")
		}
	}
	var all []*node
	cleanUpNodes(t, logDir, &all)
	all = append(all, nodes...)
	for _, n := range nodes {
		n.start(t)
	}

	client := &http.Client{Timeout: 15 * time.Second}
	call := func(method, url, body string, header map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	overview := func(n *node) (clusterapi.Overview, error) {
		status, body := call(http.MethodGet, "http://"+n.http+"/cluster", "", map[string]string{"Authorization": viewer})
		var ov clusterapi.Overview
		if status != http.StatusOK {
			return ov, fmt.Errorf("GET /cluster on %s: %d %s", n.id, status, body)
		}
		return ov, json.Unmarshal([]byte(body), &ov)
	}
	var leader *node
	clusterapi.WaitFor(t, 60*time.Second, "a leader every node names, with 3 voters, over Raft's TLS", func() (bool, string) {
		leaders := map[string]bool{}
		for _, n := range nodes {
			failIfExited(t, n)
			ov, err := overview(n)
			if err != nil || len(ov.Nodes) != 3 || ov.Fenced {
				return false, fmt.Sprint(ov, err)
			}
			leaders[ov.Leader] = true
		}
		for _, n := range nodes {
			if leaders[n.id] && len(leaders) == 1 {
				leader = n
			}
		}
		return leader != nil, fmt.Sprint(leaders)
	})
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	// A connector, so that there are assignments to keep: created by the admin through a
	// follower, its tasks running before the attacks start.
	mongoURI := testenv.Mongo(t)
	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(context.Background())
	if _, err := mc.Database("e2ena_"+run).Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}
	connector := map[string]any{"name": "attacked", "config": clusterapi.ConnectorConfig(mongoURI, "e2ena_"+run, "e2ena"+run, 2)}
	if status, body := call(http.MethodPost, "http://"+follower.http+"/connectors", jsonOf(t, connector),
		map[string]string{"Authorization": admin}); status != http.StatusCreated {
		t.Fatalf("POST /connectors as the admin = %d %s, want 201", status, body)
	}
	var before clusterapi.Overview
	clusterapi.WaitFor(t, 60*time.Second, "the connector's 2 tasks RUNNING, and the cluster state settled", func() (bool, string) {
		status, body := call(http.MethodGet, "http://"+follower.http+"/connectors/attacked/status", "", map[string]string{"Authorization": viewer})
		if status != http.StatusOK || strings.Count(body, `"state":"RUNNING"`) != 3 { // the connector and its 2 tasks
			return false, fmt.Sprint(status, " ", body)
		}
		ov, err := overview(leader)
		settled := err == nil && len(ov.Assignments) == 2 && ov.Index == before.Index
		before = ov
		return settled, fmt.Sprint(ov, err)
	})
	t.Logf("leader %s, term %d, index %d", leader.id, before.Term, before.Index)

	// The node-to-node routes, on every node: nothing without the secret or with another.
	voter := nodes[2]
	if voter == leader {
		voter = nodes[1]
	}
	bodies := map[string]string{
		"/internal/heartbeat": jsonOf(t, map[string]any{"node_id": voter.id, "http_addr": "127.0.0.1:1", "tasks": []any{}}),
		"/internal/join":      jsonOf(t, map[string]any{"cluster_id": clusterID, "node_id": "intruder", "raft_addr": voter.raft, "http_addr": "127.0.0.1:1"}),
		"/internal/registry":  jsonOf(t, map[string]any{"op": "delete_subject", "subject": "anything-value", "permanent": true}),
	}
	for _, n := range nodes {
		for path, body := range bodies {
			for _, tt := range []struct {
				name   string
				header map[string]string
				want   int
			}{
				{"without the secret", map[string]string{"Authorization": admin}, http.StatusUnauthorized},
				{"with another secret", map[string]string{"X-Mongorelay-Cluster-Secret": "another-secret-" + run}, http.StatusForbidden},
			} {
				if status, answer := call(http.MethodPost, "http://"+n.http+path, body, tt.header); status != tt.want || strings.Contains(answer, secret) {
					t.Errorf("POST %s on %s %s = %d %s, want %d", path, n.id, tt.name, status, answer, tt.want)
				}
			}
		}
	}
	// A write marked as forwarded by a follower, naming an admin, without the secret.
	forged := map[string]string{"X-Mongorelay-Forwarded": "1", "X-Mongorelay-Forwarded-Role": "admin", "Authorization": viewer}
	if status, body := call(http.MethodDelete, "http://"+leader.http+"/cluster/nodes/"+voter.id, "", forged); status != http.StatusUnauthorized {
		t.Errorf("a forged forwarded DELETE /cluster/nodes = %d %s, want 401", status, body)
	}
	// Users' routes: a member's removal and a registry hard delete need an admin.
	for _, tt := range []struct {
		url, auth string
		want      int
	}{
		{"http://" + follower.http + "/cluster/nodes/" + voter.id, "", http.StatusUnauthorized},
		{"http://" + follower.http + "/cluster/nodes/" + voter.id, viewer, http.StatusForbidden},
		{"http://" + follower.registry + "/subjects/anything-value?permanent=true", "", http.StatusUnauthorized},
		{"http://" + follower.registry + "/subjects/anything-value?permanent=true", viewer, http.StatusForbidden},
	} {
		if status, body := call(http.MethodDelete, tt.url, "", map[string]string{"Authorization": tt.auth}); status != tt.want {
			t.Errorf("DELETE %s as %q = %d %s, want %d", tt.url, tt.auth, status, body, tt.want)
		}
	}

	// Raft's port takes no garbage and no plain TCP Raft (coordinator's TestRaftOverMutualTLS
	// also sends a certificate of another CA).
	if conn, err := net.DialTimeout("tcp", leader.raft, 2*time.Second); err == nil {
		_, _ = conn.Write([]byte("\x00\x01\x02 not a TLS handshake \x16\x03\x03"))
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = conn.Read(make([]byte, 64))
		conn.Close()
	}
	appendEntries := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte(voter.raft)},
		Term: before.Term + 100, Leader: []byte(voter.raft), LeaderCommitIndex: 1 << 40,
		Entries: []*raft.Log{{Index: 1 << 40, Term: before.Term + 100, Type: raft.LogCommand, Data: []byte(`{"type":"remove_node","version":1,"payload":{"id":"` + voter.id + `"}}`)}}}
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.AppendEntries(raft.ServerID(leader.id), raft.ServerAddress(leader.raft), appendEntries, &raft.AppendEntriesResponse{}); err == nil {
		t.Error("an AppendEntries over plain TCP to the Raft port was answered")
	}

	// A node of another cluster.id, and one with another secret, are refused at join and stop.
	for _, tt := range []struct {
		id   string
		args []string
		want []string
	}{
		// Topics of its own: on this cluster's, the topics' stamp would stop it before it asks to join.
		{"other-cluster", []string{"--cluster-id", "another-" + run, "--offsets-topic", "another-" + run + "-offsets", "--schemas-topic", "another-" + run + "-schemas"},
			[]string{"is of cluster.id", "another-" + run, "and this cluster is", clusterID}},
		{"other-secret", []string{"--cluster-secret", "another-secret-" + run}, []string{"wrong cluster secret"}},
	} {
		n := newNode(t, tt.id, logDir)
		all = append(all, n)
		n.args = append(nodeArgs(n, clusterID, kafka, "--join", follower.http, "--http-auth-basic-file", usersFile), tlsArgs...)
		n.args = append(n.args, tt.args...) // the later flag wins
		n.start(t)
		n.wait(t, 60*time.Second)
		log, _ := os.ReadFile(n.logPath)
		for _, w := range tt.want {
			if !strings.Contains(string(log), w) {
				t.Errorf("%s: its log does not say %q:\n%s", tt.id, w, log)
			}
		}
	}
	after, err := overview(leader)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ov clusterapi.Overview) []string {
		var out []string
		for _, n := range ov.Nodes {
			if n.Voter {
				out = append(out, n.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	if after.Leader != before.Leader || after.Term != before.Term || after.Index != before.Index ||
		!slices.Equal(ids(after), ids(before)) || fmt.Sprint(after.Assignments) != fmt.Sprint(before.Assignments) {
		t.Errorf("the cluster changed: before %+v, after %+v", before, after)
	}
	for _, n := range after.Nodes {
		if n.ID == "intruder" || n.ID == "other-cluster" || n.ID == "other-secret" {
			t.Errorf("%s became a member: %+v", n.ID, after.Nodes)
		}
	}

	// The admin's calls go through (forwarded to the leader with the secret, which answers that
	// nobody is no member); the read-only user reads.
	if status, body := call(http.MethodDelete, "http://"+follower.http+"/cluster/nodes/nobody", "", map[string]string{"Authorization": admin}); status != http.StatusNotFound ||
		!strings.Contains(body, "is not a member") {
		t.Errorf("the admin's DELETE /cluster/nodes/nobody through a follower = %d %s, want the leader's 404", status, body)
	}
	for _, path := range []string{"/connectors", "/cluster"} {
		if status, body := call(http.MethodGet, "http://"+follower.http+path, "", map[string]string{"Authorization": viewer}); status != http.StatusOK {
			t.Errorf("GET %s as the read-only user = %d %s, want 200", path, status, body)
		}
	}
	// A level set for the cluster, through a follower, reaches every node (Raft, not the
	// follower's own logger alone); the read-only user may not set one.
	level := `{"level":"DEBUG"}`
	if status, body := call(http.MethodPut, "http://"+follower.http+"/admin/loggers/root?scope=cluster", level, map[string]string{"Authorization": viewer}); status != http.StatusForbidden {
		t.Errorf("PUT /admin/loggers/root?scope=cluster as the read-only user = %d %s, want 403", status, body)
	}
	if status, body := call(http.MethodPut, "http://"+follower.http+"/admin/loggers/root?scope=cluster", level, map[string]string{"Authorization": admin}); status != http.StatusNoContent {
		t.Errorf("PUT /admin/loggers/root?scope=cluster as the admin = %d %s, want 204", status, body)
	}
	clusterapi.WaitFor(t, 20*time.Second, "every node's root logger at DEBUG", func() (bool, string) {
		var levels []string
		for _, n := range nodes {
			_, body := call(http.MethodGet, "http://"+n.http+"/admin/loggers/root", "", map[string]string{"Authorization": viewer})
			levels = append(levels, n.id+": "+body)
		}
		return strings.Count(strings.Join(levels, " "), `"level":"DEBUG"`) == len(nodes), strings.Join(levels, ", ")
	})
	for _, n := range all {
		if lines := n.logLines(secret); len(lines) > 0 {
			t.Errorf("%s logged the cluster secret: %q", n.id, lines)
		}
	}
}

// TestNodeToNodeMutualTLS: with http.tls.* and cluster.tls.* but no cluster.secret, the nodes
// show their certificates to each other's REST API in place of the secret: heartbeats and a
// forwarded write go through, a caller without a node's certificate is refused 401 on
// /internal/, and one with another CA's certificate fails the handshake.
func TestNodeToNodeMutualTLS(t *testing.T) {
	kafka := testenv.Kafka(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	clusterID := "e2enm-" + run
	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-nodemtls")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	certs, stranger := testenv.NewCerts(t), testenv.NewCerts(t)
	token := "e2e-admin-token-" + run
	t.Setenv("MONGORELAY_HTTP_AUTH_TOKEN", token)
	t.Setenv("MONGORELAY_CLUSTER_SECRET", "")
	var nodes []*node
	var peers []string
	for i := 1; i <= 3; i++ {
		n := newNode(t, fmt.Sprintf("n%d", i), logDir)
		nodes = append(nodes, n)
		peers = append(peers, n.id+"="+n.raft+"="+n.http)
	}
	cleanUpNodes(t, logDir, &nodes)
	for i, n := range nodes {
		n.args = nodeArgs(n, clusterID, kafka, "--peers", strings.Join(peers, ","),
			"--http-tls-cert", certs.ServerCert, "--http-tls-key", certs.ServerKey, "--http-tls-ca", certs.CA,
			"--cluster-tls-cert", certs.ServerCert, "--cluster-tls-key", certs.ServerKey, "--cluster-tls-ca", certs.CA)
		if i == 0 {
			n.args = append(n.args, "--bootstrap")
		}
		n.start(t)
	}
	clientWith := func(c testenv.Certs, withCert bool) *http.Client {
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(certs.CA)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
		cfg := &tls.Config{RootCAs: pool}
		if withCert {
			cert, err := tls.LoadX509KeyPair(c.ServerCert, c.ServerKey)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	user, strangerClient := clientWith(certs, false), clientWith(stranger, true)
	call := func(c *http.Client, method, url, auth string) (int, string) {
		req, err := http.NewRequest(method, url, strings.NewReader(`{"cluster_id":"`+clusterID+`","node_id":"intruder","raft_addr":"127.0.0.1:1"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	var leader *node
	clusterapi.WaitFor(t, 60*time.Second, "a leader every node names, none fenced (heartbeats pass)", func() (bool, string) {
		leaders := map[string]bool{}
		for _, n := range nodes {
			failIfExited(t, n)
			status, body := call(user, http.MethodGet, "https://"+n.http+"/cluster", "Bearer "+token)
			var ov clusterapi.Overview
			if status != http.StatusOK || json.Unmarshal([]byte(body), &ov) != nil || len(ov.Nodes) != 3 || ov.Fenced {
				return false, fmt.Sprint(n.id, status, body)
			}
			leaders[ov.Leader] = true
		}
		for _, n := range nodes {
			if leaders[n.id] && len(leaders) == 1 {
				leader = n
			}
		}
		return leader != nil, fmt.Sprint(leaders)
	})
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	if status, body := call(user, http.MethodDelete, "https://"+follower.http+"/cluster/nodes/nobody", "Bearer "+token); status != http.StatusNotFound {
		t.Errorf("the admin's write forwarded by %s = %d %s, want the leader's 404", follower.id, status, body)
	}
	if status, body := call(user, http.MethodPost, "https://"+leader.http+"/internal/join", "Bearer "+token); status != http.StatusUnauthorized ||
		!strings.Contains(body, "certificate") {
		t.Errorf("/internal/join without a node's certificate = %d %s, want 401", status, body)
	}
	if status, body := call(strangerClient, http.MethodPost, "https://"+leader.http+"/internal/join", ""); status != 0 {
		t.Errorf("/internal/join with another CA's certificate = %d %s, want a failed handshake", status, body)
	}
}

// failIfExited ends the test at once when n's process has exited (a port taken meanwhile, a
// refused config), with the reason it printed.
func failIfExited(t *testing.T, n *node) {
	t.Helper()
	if !n.running() {
		t.Fatalf("%s exited: %q", n.id, n.logLines("mongorelay worker:"))
	}
}
