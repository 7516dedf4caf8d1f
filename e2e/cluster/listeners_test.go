//go:build e2e

package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestSecuredListeners is issue 16's acceptance for the user-facing listeners: a node told to
// listen on every interface without users refuses to start; a 3-node cluster with an admin
// token (from MONGORELAY_HTTP_AUTH_TOKEN), a users file with a read-only user and TLS on its
// REST and registry listeners refuses every route but the probes without credentials, lets
// the read-only user read and refuses its writes, takes the admin's write through a follower
// (forwarded over https with the caller's credentials) and streams; the registry takes reads
// from anyone unless registry.auth.reads=true and writes from an admin only; and
// `mongorelay worker leave` needs the token.
func TestSecuredListeners(t *testing.T) {
	kafka, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	db, prefix, name := "e2el_"+run, "e2el"+run, "secured"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Told to listen on every interface without users, a node refuses to start and says how
	// to fix it.
	wide := exec.CommandContext(ctx, mongorelayBin, "worker", "--kafka", kafka, "--http-listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	wide.Env = withoutAuth(os.Environ())
	if out, err := wide.CombinedOutput(); err == nil || !strings.Contains(string(out), "takes requests from other hosts and no REST authentication is configured") ||
		!strings.Contains(string(out), "http.auth.insecure=true") {
		t.Fatalf("a node on 0.0.0.0 without users: %v: %s, want a refusal naming http.auth.insecure", err, out)
	}

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	coll := mc.Database(db).Collection("c0")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })
	topic := fmt.Sprintf("%s.%s.c0", prefix, db)

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-listeners")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	certs := testenv.NewCerts(t)
	usersFile := filepath.Join(t.TempDir(), "users.properties")
	if err := os.WriteFile(usersFile, []byte("# e2e users\nviewer: pw-viewer-"+run+",read-only\nops: pw-ops-"+run+",admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := "e2e-admin-token-" + run
	t.Setenv("MONGORELAY_HTTP_AUTH_TOKEN", token) // the nodes' and worker leave's, as DESIGN.md 14 gives it
	viewer, ops, admin := basicAuthOf("viewer", "pw-viewer-"+run), basicAuthOf("ops", "pw-ops-"+run), "Bearer "+token

	var nodes []*node
	var peers []string
	for i := 1; i <= 3; i++ {
		n := newNode(t, fmt.Sprintf("n%d", i), logDir)
		nodes = append(nodes, n)
		peers = append(peers, n.id+"="+n.raft+"="+n.http)
	}
	for i, n := range nodes {
		n.args = nodeArgs(n, "e2el-"+run, kafka, "--peers", strings.Join(peers, ","),
			"--http-tls-cert", certs.ServerCert, "--http-tls-key", certs.ServerKey, "--http-tls-ca", certs.CA,
			"--http-auth-basic-file", usersFile)
		switch i {
		case 0:
			n.args = append(n.args, "--bootstrap")
		case 2:
			n.args = append(n.args, "--registry-auth-reads")
		}
	}
	cleanUpNodes(t, logDir, &nodes)
	for _, n := range nodes {
		n.start(t)
	}

	trust, err := httpserve.ClientTLS(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: trust}}
	// call sends a request to addr over https as auth ("": no credentials).
	call := func(method, addr, path, body, auth string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data), resp.Header
	}

	var leader, follower, third *node
	clusterapi.WaitFor(t, 60*time.Second, "a leader every node names", func() (bool, string) {
		leaders := map[string]bool{}
		for _, n := range nodes {
			status, body, _ := call(http.MethodGet, n.http, "/cluster", "", viewer)
			var ov clusterapi.Overview
			if status != http.StatusOK || json.Unmarshal([]byte(body), &ov) != nil {
				return false, fmt.Sprintf("%s: %d %s", n.id, status, body)
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
	for _, n := range nodes {
		switch {
		case n == leader:
		case follower == nil:
			follower = n
		default:
			third = n
		}
	}
	t.Logf("leader %s; writes go through %s", leader.id, follower.id)

	// Plain HTTP reaches no listener.
	for _, addr := range []string{follower.http, follower.registry} {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP to %s = %d, want the TLS server's 400", addr, resp.StatusCode)
			}
		}
	}

	c := "/connectors/" + name
	reads := []string{"/", "/connectors", "/connectors?expand=status", c, c + "/config", c + "/status", c + "/tasks", c + "/tasks/0/status", "/cluster"}
	writes := [][2]string{{http.MethodPost, "/connectors"}, {http.MethodPut, c + "/config"}, {http.MethodPut, c + "/pause"},
		{http.MethodPut, c + "/resume"}, {http.MethodPut, c + "/stop"}, {http.MethodPost, c + "/restart"},
		{http.MethodPost, c + "/tasks/0/restart"}, {http.MethodPost, c + "/snapshot"}, {http.MethodDelete, c}, {http.MethodDelete, "/cluster/nodes/nobody"}}
	for _, n := range []*node{follower, leader} {
		// The probes answer without credentials (503, or 500 from /health, while a node has
		// not yet reached the leader).
		for _, path := range []string{"/health", "/readyz"} {
			if status, body, _ := call(http.MethodGet, n.http, path, "", ""); (status != http.StatusOK && status != http.StatusServiceUnavailable &&
				status != http.StatusInternalServerError) ||
				!strings.Contains(body, `"node_id":"`+n.id+`"`) {
				t.Errorf("GET %s on %s without credentials = %d %s, want the open probe's answer", path, n.id, status, body)
			}
		}
		for _, path := range reads {
			status, body, header := call(http.MethodGet, n.http, path, "", "")
			if status != http.StatusUnauthorized || !strings.Contains(body, `"error_code":401`) || header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s on %s without credentials = %d %s, want 401 with a challenge", path, n.id, status, body)
			}
		}
		for _, w := range writes {
			if status, body, _ := call(w[0], n.http, w[1], "{}", ""); status != http.StatusUnauthorized {
				t.Errorf("%s %s on %s without credentials = %d %s, want 401", w[0], w[1], n.id, status, body)
			}
			if status, body, _ := call(w[0], n.http, w[1], "{}", viewer); status != http.StatusForbidden || !strings.Contains(body, `is read-only`) {
				t.Errorf("%s %s on %s as the read-only user = %d %s, want 403", w[0], w[1], n.id, status, body)
			}
		}
		if status, body, _ := call(http.MethodGet, n.http, "/connectors", "", basicAuthOf("viewer", "wrong")); status != http.StatusUnauthorized {
			t.Errorf("a wrong password on %s = %d %s, want 401", n.id, status, body)
		}
	}

	// The admin creates the connector through a follower, which forwards it to the leader.
	config := clusterapi.ConnectorConfig(mongoURI, db, prefix, 1)
	status, body, header := call(http.MethodPost, follower.http, "/connectors", jsonOf(t, map[string]any{"name": name, "config": config}), ops)
	if status != http.StatusCreated || header.Get("Location") != c {
		t.Fatalf("POST /connectors through %s as the admin = %d %s (Location %q), want 201", follower.id, status, body, header.Get("Location"))
	}
	clusterapi.WaitFor(t, 60*time.Second, "the task RUNNING, as the read-only user sees it through a follower", func() (bool, string) {
		status, body, _ := call(http.MethodGet, follower.http, c+"/status", "", viewer)
		var st clusterapi.ConnectorStatus
		_ = json.Unmarshal([]byte(body), &st)
		return status == http.StatusOK && len(st.Tasks) == 1 && st.Tasks[0].State == "RUNNING", fmt.Sprint(status, body)
	})
	for _, path := range reads {
		if status, body, _ := call(http.MethodGet, follower.http, path, "", viewer); status != http.StatusOK {
			t.Errorf("GET %s as the read-only user = %d %s, want 200", path, status, body)
		}
	}
	cons := newConsumer(t, strings.Split(kafka, ","), []string{topic})
	go cons.Run(ctx)
	// A task is RUNNING before its stream has opened (snapshot.mode=never streams from then
	// on): a new document goes in until one arrives.
	warm := map[string]string{}
	clusterapi.WaitFor(t, 30*time.Second, "a record from the stream", func() (bool, string) {
		if len(warm) > 0 && len(cons.Missing(warm)) < len(warm) {
			return true, ""
		}
		id := fmt.Sprintf("warm-%d", len(warm))
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
		warm[id] = topic
		return false, fmt.Sprintf("%d inserted, none arrived", len(warm))
	})
	written := map[string]string{}
	for i := range 3 {
		id := fmt.Sprintf("doc-%d", i)
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatal(err)
		}
		written[id] = topic
	}
	clusterapi.WaitFor(t, 60*time.Second, "every insert on Kafka", func() (bool, string) {
		missing := cons.Missing(written)
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})

	// The registry: reads open to consumers, writes for an admin only; on the node with
	// registry.auth.reads=true reads need a user too. The admin's write on a follower reaches
	// the leader's registry over https.
	subject := topic + "-value"
	schema := jsonOf(t, map[string]string{"schema": `{"type":"record","name":"Extra","fields":[{"name":"a","type":"long"}]}`})
	reg := follower.registry
	clusterapi.WaitFor(t, 10*time.Second, "GET /subjects without credentials listing "+subject, func() (bool, string) {
		status, body, _ := call(http.MethodGet, reg, "/subjects", "", "")
		return status == http.StatusOK && strings.Contains(body, subject), fmt.Sprint(status, body)
	})
	if status, body, _ := call(http.MethodPost, reg, "/subjects/"+subject, schema, ""); status == http.StatusUnauthorized {
		t.Errorf("a lookup without credentials = %d %s, want it answered (a read)", status, body)
	}
	for _, w := range [][2]string{{http.MethodPost, "/subjects/extra-value/versions"}, {http.MethodDelete, "/subjects/" + subject},
		{http.MethodPut, "/config/extra-value"}} {
		if status, body, _ := call(w[0], reg, w[1], schema, ""); status != http.StatusUnauthorized {
			t.Errorf("registry %s %s without credentials = %d %s, want 401", w[0], w[1], status, body)
		}
		if status, body, _ := call(w[0], reg, w[1], schema, viewer); status != http.StatusForbidden {
			t.Errorf("registry %s %s as the read-only user = %d %s, want 403", w[0], w[1], status, body)
		}
	}
	if status, body, _ := call(http.MethodPost, reg, "/subjects/extra-value/versions", schema, admin); status != http.StatusOK || !strings.Contains(body, `"id"`) {
		t.Errorf("registering as the admin on %s = %d %s, want 200 with an id", follower.id, status, body)
	}
	closed := nodes[2].registry
	if status, body, _ := call(http.MethodGet, closed, "/subjects", "", ""); status != http.StatusUnauthorized {
		t.Errorf("GET /subjects without credentials with registry.auth.reads = %d %s, want 401", status, body)
	}
	if status, body, _ := call(http.MethodGet, closed, "/", "", ""); status != http.StatusOK {
		t.Errorf("the registry's root with registry.auth.reads = %d %s, want it open to health checks", status, body)
	}
	clusterapi.WaitFor(t, 10*time.Second, "n3's registry listing the admin's subject to the read-only user", func() (bool, string) {
		status, body, _ := call(http.MethodGet, closed, "/subjects", "", viewer)
		return status == http.StatusOK && strings.Contains(body, "extra-value"), fmt.Sprint(status, body)
	})

	// mongorelay worker leave needs the admin token: refused without it, done with it (from
	// MONGORELAY_HTTP_AUTH_TOKEN, as on a node's host).
	leave := []string{"worker", "leave", "--node-id", third.id, "--http", "https://" + follower.http, "--http-tls-ca", certs.CA}
	refused := exec.CommandContext(ctx, mongorelayBin, leave...)
	refused.Env = withoutAuth(os.Environ())
	if out, err := refused.CombinedOutput(); err == nil || !strings.Contains(string(out), "HTTP 401") {
		t.Errorf("worker leave without the token: %v: %s, want a 401", err, out)
	}
	if out, err := runCLI(leave...); err != nil {
		t.Errorf("worker leave with the token: %v: %s", err, out)
	} else {
		third.wait(t, 20*time.Second) // it learns it was removed, over https, and exits
	}
	if warned := slices.ContainsFunc(nodes, func(n *node) bool { return len(n.logLines("unauthenticated requests from other hosts")) > 0 }); warned {
		t.Error("a node with users warned of unauthenticated requests")
	}
}

// withoutAuth is env without the admin token the test gives its nodes.
func withoutAuth(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "MONGORELAY_HTTP_AUTH_TOKEN=") })
}

func basicAuthOf(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
