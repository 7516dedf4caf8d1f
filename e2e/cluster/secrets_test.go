//go:build e2e

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestFileSecretNeverShown is issue 16's acceptance for config providers: a connector whose
// connection string takes a secret from ${file:...} streams, and the secret appears in no REST
// response, no line of the node's log (at debug level), no file of its Raft data dir (the log
// and a snapshot, which a low raft.snapshot.threshold forces) and no record of its topics or
// of the offsets topic; the reference itself is what the responses and the Raft state hold.
//
// The stand-in MongoDB has no authentication, so the secret is the connection string's
// appName, which it ignores; the redaction of a literal URI shows an appName, so only the
// reference keeps it out of sight.
func TestFileSecretNeverShown(t *testing.T) {
	kafka, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	db, prefix, name := "e2es_"+run, "e2es"+run, "with-secret"
	secret := "Zq8SecretAppName" + run
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	props := filepath.Join(t.TempDir(), "mongo.properties")
	if err := os.WriteFile(props, []byte("# the MongoDB app name, a stand-in for a password\napp="+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := "${file:" + props + ":app}"
	sep := "/?"
	if strings.Contains(mongoURI, "?") {
		sep = "&"
	}
	uri := mongoURI + sep + "appName=" + ref

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

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-secrets")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "n1", logDir)
	clusterID := "e2es-" + run
	n.args = nodeArgs(n, clusterID, kafka, "--bootstrap", "--log-level", "debug",
		"--raft-snapshot-threshold", "2", "--raft-snapshot-interval", "500ms")
	t.Cleanup(func() {
		n.cleanup()
		if t.Failed() {
			t.Logf("node log kept in %s", logDir)
		}
	})
	n.start(t)
	clusterapi.WaitFor(t, 30*time.Second, "n1 leading its cluster", func() (bool, string) {
		ov, err := clusterapi.GetOverview(n.http)
		return err == nil && ov.Leader == n.id, fmt.Sprint(ov.Leader, err)
	})

	// Every response the test gets, whatever its status.
	var responses []string
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+n.http+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		responses = append(responses, fmt.Sprintf("%s %s → %d %s", method, path, resp.StatusCode, data))
		return resp.StatusCode, string(data)
	}

	config := clusterapi.ConnectorConfig(uri, db, prefix, 1)
	config["snapshot.mode"] = "initial"
	body := jsonOf(t, map[string]any{"name": name, "config": config})
	if status, answer := call(http.MethodPost, "/connectors", body); status != http.StatusCreated || !strings.Contains(answer, jsonText(t, ref)) {
		t.Fatalf("POST /connectors = %d %s, want 201 showing the reference", status, answer)
	}
	// A secret key whose reference gives a bad value: the 400 names the reference.
	bad := clusterapi.ConnectorConfig(mongoURI+sep+"maxPoolSize="+ref, db, prefix, 1)
	if status, answer := call(http.MethodPost, "/connectors", jsonOf(t, map[string]any{"name": "bad-value", "config": bad})); status != http.StatusBadRequest {
		t.Errorf("POST of a connection string whose reference gives a bad maxPoolSize = %d %s, want 400", status, answer)
	}

	clusterapi.WaitFor(t, 60*time.Second, "the task RUNNING", func() (bool, string) {
		st, err := clusterapi.GetStatus(n.http, name)
		return err == nil && len(st.Tasks) == 1 && st.Tasks[0].State == "RUNNING", fmt.Sprintf("%+v %v", st, err)
	})
	cons := newConsumer(t, strings.Split(kafka, ","), []string{topic})
	go cons.Run(ctx)
	written := map[string]string{"seed": topic}
	for i := range 5 {
		id := fmt.Sprintf("doc-%d", i)
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: i}}); err != nil {
			t.Fatal(err)
		}
		written[id] = topic
	}
	clusterapi.WaitFor(t, 60*time.Second, "every document on Kafka", func() (bool, string) {
		missing := cons.Missing(written)
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})

	// Read back as a client would, and send the config back as shown: it keeps the reference.
	_, shown := call(http.MethodGet, "/connectors/"+name+"/config", "")
	if status, answer := call(http.MethodPut, "/connectors/"+name+"/config", shown); status != http.StatusOK {
		t.Errorf("PUT of the config as GET shows it = %d %s", status, answer)
	}
	for _, path := range []string{"/", "/connectors", "/connectors?expand=info&expand=status", "/connectors/" + name,
		"/connectors/" + name + "/config", "/connectors/" + name + "/status", "/connectors/" + name + "/tasks",
		"/connectors/" + name + "/tasks/0/status", "/cluster", "/health", "/readyz"} {
		if status, answer := call(http.MethodGet, path, ""); status != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, status, answer)
		}
	}

	raftDir := filepath.Join(n.dataDir, "raft")
	clusterapi.WaitFor(t, 30*time.Second, "a Raft snapshot", func() (bool, string) {
		snaps, _ := filepath.Glob(filepath.Join(raftDir, "snapshots", "*", "state.bin"))
		return len(snaps) > 0, "no snapshots/*/state.bin yet"
	})
	offsets := topicRecords(t, kafka, clusterID+"-offsets", topic)
	n.stop(t, 30*time.Second)

	for _, r := range responses {
		if strings.Contains(r, secret) {
			t.Errorf("a REST response shows the secret: %s", r)
		}
	}
	logText, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(logText), "\n") {
		if strings.Contains(line, secret) {
			t.Errorf("a log line shows the secret: %s", line)
		}
	}
	if !bytes.Contains(logText, []byte("level=DEBUG")) {
		t.Errorf("the node logged nothing at debug level: the check saw less than it should")
	}
	var files int
	holdRef := map[string]bool{} // the data dir's files that hold the reference, by base name
	err = filepath.WalkDir(n.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s holds the secret", path)
		}
		if bytes.Contains(data, []byte(ref)) {
			holdRef[filepath.Base(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The check above looked where the config is: the Raft log and a snapshot hold it.
	if !holdRef["raft.db"] || !holdRef["state.bin"] {
		t.Errorf("the reference is in %v of the data dir's %d files: want the Raft log (raft.db) and a snapshot (state.bin)", holdRef, files)
	}
	for _, rec := range offsets {
		if bytes.Contains(rec, []byte(secret)) {
			t.Errorf("a record of the offsets or data topic holds the secret: %q", rec)
		}
	}
	t.Logf("secret absent from %d responses, %d log lines, %d files of the data dir (the reference in %v) and %d records",
		len(responses), strings.Count(string(logText), "\n"), files, holdRef, len(offsets))
}

// topicRecords returns the keys and values of every record of the topics, from the start.
func topicRecords(t *testing.T, kafka string, topics ...string) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kafka, ",")...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out [][]byte
	// Read until a poll of a second brings nothing more.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fetches := cl.PollFetches(ctx)
		cancel()
		got := 0
		fetches.EachRecord(func(r *kgo.Record) {
			out = append(out, r.Key, r.Value)
			got++
		})
		if got == 0 {
			return out
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jsonText is s as it appears inside a JSON string.
func jsonText(t *testing.T, s string) string {
	t.Helper()
	q := jsonOf(t, s)
	return q[1 : len(q)-1]
}
