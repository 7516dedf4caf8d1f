//go:build e2e

package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// badInput is a request the API must refuse with status, its error message naming field and,
// where the refusal has one, holding hint (how to fix it).
type badInput struct {
	name         string
	method, path string
	body         string
	contentType  string // "" is application/json
	status       int
	field, hint  string
}

// badInputs are the bad requests of w's connectors; w.conn exists (STOPPED), w.missing does
// not.
func badInputs(w world) []badInput {
	create := func(name string, extra ...string) string { return w.create(name, "", extra...) }
	bad := func(key, value string) string { return create(w.missing, key, value) }
	c := "/connectors/" + w.conn
	long := strings.Repeat("n", 300)
	return []badInput{
		// Keys.
		{name: "an unknown key", body: bad("topic.prefx", "shop"), field: "topic.prefx", hint: `did you mean "topic.prefix"`},
		{name: "a Debezium 1.x key", body: bad("collection.whitelist", "shop.orders"), field: "collection.whitelist", hint: "collection.include.list"},
		{name: "a per-connector client override", body: bad("producer.override.acks", "1"), field: "producer.override.acks", hint: "kafka.*"},
		{name: "a required key missing", body: fmt.Sprintf(`{"name": %q, "config": {"connector.class": "mongodb", "topic.prefix": "p"}}`, w.missing),
			field: "mongodb.connection.string", hint: "mongodb://"},
		{name: "an unknown connector class", body: bad("connector.class", "org.example.FileStreamSource"), field: "connector.class", hint: "mongodb"},

		// Types.
		{name: "a word for a number", body: bad("shards", "two"), field: "shards", hint: "1 to 1024"},
		{name: "a fraction for a whole number", body: bad("max.batch.size", "1.5"), field: "max.batch.size", hint: "whole number"},
		{name: "a word for a boolean", body: bad("exactly.once", "yes"), field: "exactly.once", hint: "true or false"},
		{name: "an object for a number", body: fmt.Sprintf(`{"name": %q, "config": %s}`, w.missing,
			strings.Replace(w.config(""), "{", `{"shards": {"n": 2}, `, 1)), field: "shards", hint: "whole number"},

		// Numbers out of range.
		{name: "zero shards", body: bad("shards", "0"), field: "shards", hint: "1 to 1024"},
		{name: "a negative batch size", body: bad("max.batch.size", "-5"), field: "max.batch.size", hint: "1 to 100000"},
		{name: "a negative snapshot rate", body: bad("snapshot.max.documents.per.second", "-1"), field: "snapshot.max.documents.per.second", hint: "0 to 1000000000"},
		{name: "a huge heartbeat", body: bad("heartbeat.interval.ms", "99999999999999999999"), field: "heartbeat.interval.ms", hint: "100 to 3600000"},
		{name: "a huge tasks.max", body: bad("tasks.max", "2000000"), field: "tasks.max", hint: "1 to 1048576"},
		{name: "zero partitions", body: bad("topic.creation.default.partitions", "0"), field: "topic.creation.default.partitions", hint: "-1"},

		// Enums.
		{name: "an unknown snapshot mode", body: bad("snapshot.mode", "sometimes"), field: "snapshot.mode", hint: "initial"},
		{name: "an unknown capture mode", body: bad("capture.mode", "everything"), field: "capture.mode", hint: "change_streams"},
		{name: "an unknown error tolerance", body: bad("errors.tolerance", "some"), field: "errors.tolerance", hint: "none"},
		{name: "an unknown value format", body: bad("value.format", "protobuf"), field: "value.format", hint: "json_schema"},

		// Selection.
		{name: "a bad collection regex", body: bad("collection.include.list", `shop\.(orders`), field: "collection.include.list", hint: "regular expression"},
		{name: "a bad database regex", body: bad("database.include.list", "[shop"), field: "database.include.list", hint: "regular expression"},
		{name: "an empty include list", body: bad("collection.include.list", ""), field: "collection.include.list", hint: "remove the key"},
		{name: "an include list of commas", body: bad("database.include.list", " , "), field: "database.include.list", hint: "remove the key"},
		{name: "include and exclude lists together", body: bad("database.exclude.list", "admin"), field: "database.exclude.list", hint: "keep only one"},

		// Pipelines.
		{name: "a pipeline that is not JSON", body: bad("pipeline", `[{"$match": `), field: "pipeline", hint: "JSON"},
		{name: "a pipeline that is not an array", body: bad("pipeline", `{"$match": {}}`), field: "pipeline", hint: "[...]"},
		{name: "a pipeline writing elsewhere", body: bad("pipeline", `[{"$out": "copy"}]`), field: "pipeline", hint: "$out"},
		{name: "a pipeline joining collections", body: bad("pipeline", `[{"$lookup": {"from": "x", "as": "y"}}]`), field: "pipeline", hint: "$lookup"},
		{name: "a pipeline dropping _id", body: bad("pipeline", `[{"$project": {"_id": 0}}]`), field: "pipeline", hint: "_id"},

		// Other values.
		{name: "a topic prefix Kafka refuses", body: bad("topic.prefix", "shop orders"), field: "topic.prefix", hint: "letters, digits"},
		{name: "a connection string of another scheme", body: bad("mongodb.connection.string", "http://db:27017"), field: "mongodb.connection.string", hint: "mongodb+srv"},
		{name: "a registry URL of another scheme", body: bad("schema.registry.url", "ftp://registry"), field: "schema.registry.url", hint: "http"},

		// Names.
		{name: "a name with a slash", body: create("orders/v2"), field: "name", hint: "/"},
		{name: "a name of 300 characters", body: create(long), field: "name", hint: "300"},
		{name: "an empty name", body: create(""), field: "name", hint: "required"},
		{name: "a config name that differs", body: fmt.Sprintf(`{"name": %q, "config": %s}`, w.missing, w.config(w.conn)), field: "name", hint: "make them equal"},
		{name: "a duplicate name", body: create(w.conn), status: http.StatusConflict, field: w.conn, hint: "already exists"},

		// The request itself.
		{name: "an unknown initial state", body: w.create(w.missing, "SLEEPING"), field: "initial_state", hint: "STOPPED"},
		{name: "no config", body: fmt.Sprintf(`{"name": %q}`, w.missing), field: "config", hint: `{"name"`},
		{name: "a config that is not an object", body: fmt.Sprintf(`{"name": %q, "config": "shards=2"}`, w.missing), field: "config", hint: "object"},
		{name: "malformed JSON", body: fmt.Sprintf(`{"name": %q, "config": {`, w.missing), field: "JSON"},
		{name: "a text body", body: "name=" + w.missing, contentType: "text/plain", status: http.StatusUnsupportedMediaType, field: "Content-Type", hint: "application/json"},
		{name: "an oversized body", body: bad("pipeline", `[{"$match": {"x": "`+strings.Repeat("x", 2<<20)+`"}}]`),
			status: http.StatusRequestEntityTooLarge, field: "body", hint: "1 MiB"},

		// Changes to the existing connector.
		{name: "put a bad config", method: "PUT", path: c + "/config", body: w.config(w.conn, "shards", "-1"), field: "shards", hint: "1 to 1024"},
		{name: "put a config as text", method: "PUT", path: c + "/config", body: "shards=2", contentType: "text/plain",
			status: http.StatusUnsupportedMediaType, field: "Content-Type", hint: "application/json"},
		{name: "patch a bad value", method: "PATCH", path: c + "/config", body: `{"snapshot.mode": "always"}`, field: "snapshot.mode", hint: "initial"},
		{name: "patch away a required key", method: "PATCH", path: c + "/config", body: `{"topic.prefix": null}`, field: "topic.prefix", hint: "required"},
		{name: "patch an unknown key", method: "PATCH", path: c + "/config", body: `{"shard": "2"}`, field: "shard", hint: `did you mean "shards"`},
		{name: "patch a config that is not an object", method: "PATCH", path: c + "/config", body: `["shards"]`, field: "config object", hint: "null to remove a key"},
		{name: "patch an unknown connector", method: "PATCH", path: "/connectors/" + w.missing + "/config", body: `{"shards": "2"}`,
			status: http.StatusNotFound, field: w.missing, hint: "not found"},
		{name: "alter offsets to a bad token", method: "PATCH", path: c + "/offsets",
			body:  fmt.Sprintf(`{"offsets": [{"partition": {"db": %q, "coll": "orders", "shard": "0-of-1"}, "offset": {"resume_token": "zz"}}]}`, w.db),
			field: "resume_token", hint: "hex digits"},
	}
}

// TestBadInputsChangeNothing sends every bad input through each target -contract.via names
// (a follower of a 3-node cluster by default): each gets its documented 4xx (400 when
// invalid, unless the case says otherwise) in Kafka Connect's error shape, naming the bad
// field, with a hint where one applies. On a cluster the coordinator's state, as the FSM
// writes it into a Raft snapshot, is byte for byte the same on every node after the whole
// table as before: the nodes snapshot after every new log entry (raft.snapshot.threshold=1),
// checked every 100-200 ms, so the newest snapshot on disk is the state the node has applied.
// A standalone process keeps its state in memory, so through it only the answers are checked.
func TestBadInputsChangeNothing(t *testing.T) {
	for _, target := range strings.Split(*via, ",") {
		t.Run(target, func(t *testing.T) {
			run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
			w := world{mongo: testenv.Mongo(t), db: "contract_" + run, prefix: "contract" + run, conn: "orders-" + run, missing: "missing-" + run}
			seedCollection(t, w.mongo, w.db, "orders")
			var nodes []proc
			var addr string
			switch target {
			case "follower", "leader":
				nodes = startCluster(t, run, "--raft-snapshot-threshold", "1", "--raft-snapshot-interval", "100ms")
				addr = nodes[0].http
				if target == "follower" {
					addr = nodes[1].http
				}
			case "standalone":
				addr = startStandalone(t, run, w.create("file-"+run, "")).http
			default:
				t.Fatalf("-contract.via: unknown target %q: give follower, leader or standalone", target)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var created any
			if _, err := clusterapi.Call(ctx, http.MethodPost, addr, "/connectors", json.RawMessage(w.create(w.conn, "STOPPED")), &created); err != nil {
				t.Fatal(err)
			}
			var before [][]byte
			if nodes != nil {
				before = settledSnapshots(t, nodes)
			}

			cases := badInputs(w)
			if len(cases) < 30 {
				t.Fatalf("%d bad inputs, want at least 30", len(cases))
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.check(t, addr) })
			}
			if nodes != nil {
				unchangedSnapshots(t, nodes, before)
			}
		})
	}
}

// unchangedSnapshots checks that every node's newest FSM snapshot is before's, once they
// have had long enough to apply, and snapshot, any write.
func unchangedSnapshots(t *testing.T, nodes []proc, before [][]byte) {
	t.Helper()
	time.Sleep(2 * time.Second)
	for i, n := range nodes {
		var after []byte
		clusterapi.WaitFor(t, 5*time.Second, n.id+"'s newest snapshot", func() (bool, string) {
			after = newestSnapshot(t, n)
			return after != nil, "none readable"
		})
		if !bytes.Equal(after, before[i]) {
			t.Errorf("%s: the FSM snapshot changed (%d bytes, then %d): %s", n.id, len(before[i]), len(after), firstDifference(before[i], after))
		}
	}
}

// firstDifference quotes a and b from a little before where they first differ.
func firstDifference(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-40)
	quote := func(s []byte) string { return short(string(s[from:min(len(s), i+160)])) }
	return fmt.Sprintf("at byte %d, before %s, after %s", i, quote(a), quote(b))
}

// check sends the bad input to addr and checks the refusal.
func (b badInput) check(t *testing.T, addr string) {
	method, path, status, ct := b.method, b.path, b.status, b.contentType
	if method == "" {
		method, path = http.MethodPost, "/connectors"
	}
	if status == 0 {
		status = http.StatusBadRequest
	}
	if ct == "" {
		ct = "application/json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, strings.NewReader(b.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Code    *int    `json:"error_code"`
		Message *string `json:"message"`
	}
	if err := json.Unmarshal(data, &e); err != nil || e.Code == nil || e.Message == nil {
		t.Fatalf("%s %s = %d %s: not the error shape {\"error_code\": N, \"message\": \"...\"}", method, path, resp.StatusCode, short(string(data)))
	}
	if resp.StatusCode != status || *e.Code != status {
		t.Errorf("%s %s = %d (error_code %d), want %d: %s", method, path, resp.StatusCode, *e.Code, status, *e.Message)
	}
	for _, want := range []string{b.field, b.hint} {
		if !strings.Contains(*e.Message, want) {
			t.Errorf("message %q does not hold %q", *e.Message, want)
		}
	}
}

// settledSnapshots waits until every node's newest snapshot holds the same state and has not
// changed for a second, and returns each node's.
func settledSnapshots(t *testing.T, nodes []proc) [][]byte {
	t.Helper()
	var last [][]byte
	var since time.Time
	clusterapi.WaitFor(t, 30*time.Second, "the same FSM snapshot on every node, unchanged for a second", func() (bool, string) {
		var snaps [][]byte
		for _, n := range nodes {
			snaps = append(snaps, newestSnapshot(t, n))
		}
		for _, s := range snaps[1:] {
			if !bytes.Equal(s, snaps[0]) || len(s) == 0 {
				last = nil
				return false, "the nodes' snapshots differ"
			}
		}
		if last == nil || !bytes.Equal(last[0], snaps[0]) {
			last, since = snaps, time.Now()
			return false, "just changed"
		}
		return time.Since(since) >= time.Second, "settling"
	})
	return last
}

// newestSnapshot returns the state.bin of the newest Raft snapshot in n's data dir (nil when
// there is none yet): what the FSM's Persist wrote.
func newestSnapshot(t *testing.T, n proc) []byte {
	t.Helper()
	dirs, err := os.ReadDir(filepath.Join(n.dataDir, "raft", "snapshots"))
	if err != nil {
		return nil
	}
	var newest string
	var newestTerm, newestIndex, newestMS uint64
	for _, d := range dirs {
		var term, index, ms uint64
		if !d.IsDir() || strings.HasSuffix(d.Name(), ".tmp") {
			continue
		}
		if _, err := fmt.Sscanf(d.Name(), "%d-%d-%d", &term, &index, &ms); err != nil {
			continue
		}
		if newest == "" || index > newestIndex || index == newestIndex && (term > newestTerm || ms > newestMS) {
			newest, newestTerm, newestIndex, newestMS = d.Name(), term, index, ms
		}
	}
	if newest == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(n.dataDir, "raft", "snapshots", newest, "state.bin"))
	if err != nil {
		return nil // removed by the store (it keeps two) since the listing: the next poll reads the newer one
	}
	return data
}
