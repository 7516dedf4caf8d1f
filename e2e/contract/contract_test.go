//go:build e2e

package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// exchange is one request of the contract and the answer Kafka Connect gives it.
type exchange struct {
	name         string
	method, path string
	// body is sent as contentType (application/json when empty); "" sends none.
	body string
	// echo sends the previous exchange's answer as the body: what one route answers is what
	// another takes (GET .../offsets and PATCH .../offsets).
	echo        bool
	contentType string
	status      int
	// shape is the answer's JSON; nil: the answer has no body.
	shape shape
	// location is how the Location header ends; "" checks none.
	location string
	// poll repeats the request until the answer matches, for up to pollTimeout: the cluster
	// acts on a write after answering it (tasks start, states change).
	poll bool
}

// pollTimeout bounds an exchange that polls.
const pollTimeout = 45 * time.Second

// world is what the exchanges name: the connectors, the MongoDB they capture and the topic
// prefix, all unique to one run.
type world struct {
	mongo, db, prefix                   string
	conn, put, stopped, paused, missing string
}

// config is the JSON config of a connector of w named name, with extra keys.
func (w world) config(name string, extra ...string) string {
	cfg := map[string]string{
		"connector.class": "mongodb", "mongodb.connection.string": w.mongo, "database.include.list": w.db,
		"topic.prefix": w.prefix, "snapshot.mode": "never", "heartbeat.interval.ms": "1000", "poll.max.wait.ms": "500",
		"topic.creation.default.replication.factor": "1",
	}
	if name != "" {
		cfg["name"] = name
	}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	b, _ := json.Marshal(cfg)
	return string(b)
}

// create is the body of POST /connectors for name, in initial state (none when "").
func (w world) create(name, initial string, extra ...string) string {
	s := fmt.Sprintf(`{"name": %q, "config": %s`, name, w.config("", extra...))
	if initial != "" {
		s += fmt.Sprintf(`, "initial_state": %q`, initial)
	}
	return s + "}"
}

// contract is Kafka Connect 4.x's REST API as its resources (RootResource,
// ConnectorsResource, ConnectorPluginsResource, LoggingResource) and ConnectExceptionMapper
// answer it, in the order a user's tool would call it: the status codes and JSON shapes, with
// the values Connect fixes.
func contract(w world) []exchange {
	c := "/connectors/" + w.conn
	partition := fmt.Sprintf(`{"db": %q, "coll": "orders", "shard": "0-of-1"}`, w.db)
	return []exchange{
		// RootResource and KIP-1017.
		{name: "server info", method: "GET", path: "/", status: 200, shape: serverInfo},
		{name: "health", method: "GET", path: "/health", status: 200, shape: health},

		// ConnectorPluginsResource.
		{name: "plugins", method: "GET", path: "/connector-plugins", status: 200, shape: nonEmpty(pluginInfo)},
		{name: "plugins, all kinds", method: "GET", path: "/connector-plugins?connectorsOnly=false", status: 200, shape: nonEmpty(pluginInfo)},
		{name: "plugin config", method: "GET", path: "/connector-plugins/mongodb/config", status: 200, shape: nonEmpty(configKeyInfo)},
		{name: "plugin config by Debezium's class", method: "GET", path: "/connector-plugins/io.debezium.connector.mongodb.MongoDbConnector/config",
			status: 200, shape: nonEmpty(configKeyInfo)},
		{name: "plugin config by simple name", method: "GET", path: "/connector-plugins/MongoDbConnector/config", status: 200, shape: nonEmpty(configKeyInfo)},
		{name: "unknown plugin", method: "GET", path: "/connector-plugins/NoSuchConnector/config", status: 404, shape: errorBody(404, "NoSuchConnector")},
		{name: "validate a valid config", method: "PUT", path: "/connector-plugins/mongodb/config/validate", body: w.config(w.conn),
			status: 200, shape: all{configInfos(0), exact{"error_count": eq{0}, "name": str, "groups": array(str), "configs": array(object)}}},
		{name: "validate names every bad key", method: "PUT", path: "/connector-plugins/mongodb/config/validate",
			body: `{"connector.class": "mongodb", "shards": "0", "topic.prefx": "x"}`, status: 200,
			shape: configInfos(3, keyErrors{"shards", nil}, keyErrors{"mongodb.connection.string", []string{"required"}},
				keyErrors{"topic.prefx", []string{"topic.prefix"}})},
		{name: "validate a config of another class", method: "PUT", path: "/connector-plugins/mongodb/config/validate",
			body: `{"connector.class": "org.example.Other"}`, status: 400, shape: errorBody(400)},
		{name: "validate a body that is not JSON", method: "PUT", path: "/connector-plugins/mongodb/config/validate",
			body: "connector.class=mongodb", contentType: "text/plain", status: 415, shape: errorBody(415)},

		// ConnectorsResource: create, read, conflicts.
		{name: "list", method: "GET", path: "/connectors", status: 200, shape: array(str)},
		{name: "create a body that is not JSON", method: "POST", path: "/connectors", body: "name=" + w.conn, contentType: "text/plain",
			status: 415, shape: errorBody(415)},
		{name: "create malformed JSON", method: "POST", path: "/connectors", body: `{"name": `, status: 400, shape: errorBody(400)},
		{name: "create an invalid config", method: "POST", path: "/connectors", body: w.create(w.conn, "", "shards", "zero"),
			status: 400, shape: errorBody(400, "shards")},
		{name: "create", method: "POST", path: "/connectors", body: w.create(w.conn, "", "snapshot.mode", "initial"), status: 201,
			shape: connectorInfo(w.conn, array(anyJSON)), location: "/connectors/" + w.conn},
		{name: "create again", method: "POST", path: "/connectors", body: w.create(w.conn, ""), status: 409,
			shape: errorBody(409, w.conn, "already exists")},
		{name: "the tasks run", method: "GET", path: c + "/status", status: 200, poll: true,
			shape: stateInfo(w.conn, "RUNNING", nonEmpty(taskState("RUNNING")))},
		{name: "info", method: "GET", path: c, status: 200, shape: connectorInfo(w.conn, arrayOf{elem: exact{"connector": eq{w.conn}, "task": num}, min: 1})},
		{name: "unknown connector", method: "GET", path: "/connectors/" + w.missing, status: 404, shape: errorBody(404, w.missing, "not found")},
		{name: "config", method: "GET", path: c + "/config", status: 200,
			shape: all{mapOf{elem: str}, fields{"name": eq{w.conn}, "connector.class": eq{"mongodb"}, "mongodb.connection.string": str}}},
		{name: "tasks", method: "GET", path: c + "/tasks", status: 200, shape: nonEmpty(taskInfo(w.conn))},
		{name: "task status", method: "GET", path: c + "/tasks/0/status", status: 200, shape: fields{"id": eq{0}, "state": states, "worker_id": str}}, // with mongorelay's figures (api.TaskStatus)
		{name: "unknown task", method: "GET", path: c + "/tasks/99/status", status: 404, shape: errorBody(404)},
		{name: "list", method: "GET", path: "/connectors", status: 200, shape: nonEmpty(str)},
		{name: "list with info", method: "GET", path: "/connectors?expand=info", status: 200,
			shape: mapOf{elem: exact{"info": fields{"name": str, "config": mapOf{elem: str}, "tasks": array(object), "type": str}}, min: 1}},
		{name: "list with status", method: "GET", path: "/connectors?expand=status", status: 200,
			shape: mapOf{elem: exact{"status": fields{"name": str, "connector": fields{"state": states}, "tasks": array(taskState("")), "type": str}}, min: 1}},
		{name: "list with info and status", method: "GET", path: "/connectors?expand=info&expand=status", status: 200,
			shape: mapOf{elem: exact{"info": fields{"name": str, "config": mapOf{elem: str}, "tasks": array(object), "type": str}, "status": object}, min: 1}},

		// Config changes.
		{name: "patch config, null removes a key", method: "PATCH", path: c + "/config", body: `{"max.batch.size": "100", "poll.max.wait.ms": null}`,
			status: 200, shape: all{connectorInfo(w.conn, taskIDs(w.conn)), fields{"config": fields{"max.batch.size": eq{"100"}, "poll.max.wait.ms": absent}}}},
		{name: "patched config", method: "GET", path: c + "/config", status: 200,
			shape: fields{"max.batch.size": eq{"100"}, "poll.max.wait.ms": absent, "name": eq{w.conn}}},
		{name: "patch an unknown connector", method: "PATCH", path: "/connectors/" + w.missing + "/config", body: `{"max.batch.size": "100"}`,
			status: 404, shape: errorBody(404, w.missing)},
		{name: "patch to an invalid config", method: "PATCH", path: c + "/config", body: `{"max.batch.size": "-1"}`,
			status: 400, shape: errorBody(400, "max.batch.size")},
		{name: "put config, replacing it", method: "PUT", path: c + "/config", body: w.config(w.conn, "max.batch.size", "200"),
			status: 200, shape: all{connectorInfo(w.conn, taskIDs(w.conn)), fields{"config": fields{"max.batch.size": eq{"200"}}}}},
		{name: "put config, creating", method: "PUT", path: "/connectors/" + w.put + "/config", body: w.config(w.put),
			status: 201, shape: connectorInfo(w.put, array(anyJSON)), location: "/connectors/" + w.put},
		{name: "put config whose name differs", method: "PUT", path: "/connectors/" + w.put + "/config", body: w.config(w.conn),
			status: 400, shape: errorBody(400, "name")},
		{name: "put config as text", method: "PUT", path: c + "/config", body: "max.batch.size=1", contentType: "text/plain",
			status: 415, shape: errorBody(415)},

		// Topics.
		{name: "topics", method: "GET", path: c + "/topics", status: 200, shape: activeTopics(w.conn)},
		{name: "reset topics", method: "PUT", path: c + "/topics/reset", status: 202},
		{name: "topics of an unknown connector", method: "GET", path: "/connectors/" + w.missing + "/topics", status: 404, shape: errorBody(404)},

		// Offsets (KIP-875) while RUNNING: readable, not changeable.
		{name: "offsets while running", method: "GET", path: c + "/offsets", status: 200, shape: connectorOffsets(0)},
		{name: "alter offsets while running", method: "PATCH", path: c + "/offsets",
			body:   fmt.Sprintf(`{"offsets": [{"partition": %s, "offset": {"cluster_time": {"t": 1700000000, "i": 1}}}]}`, partition),
			status: 400, shape: errorBody(400, "STOPPED")},
		{name: "reset offsets while running", method: "DELETE", path: c + "/offsets", status: 400, shape: errorBody(400, "STOPPED")},
		{name: "offsets of an unknown connector", method: "GET", path: "/connectors/" + w.missing + "/offsets", status: 404, shape: errorBody(404)},

		// Pause, resume, restart.
		{name: "pause an unknown connector", method: "PUT", path: "/connectors/" + w.missing + "/pause", status: 404, shape: errorBody(404, w.missing)},
		{name: "pause", method: "PUT", path: c + "/pause", status: 202},
		{name: "paused", method: "GET", path: c + "/status", status: 200, poll: true, shape: stateInfo(w.conn, "PAUSED", nonEmpty(taskState("PAUSED")))},
		{name: "resume", method: "PUT", path: c + "/resume", status: 202},
		{name: "resumed", method: "GET", path: c + "/status", status: 200, poll: true, shape: stateInfo(w.conn, "RUNNING", nonEmpty(taskState("RUNNING")))},
		{name: "restart the connector", method: "POST", path: c + "/restart", status: 204},
		{name: "restart only failed, none failed", method: "POST", path: c + "/restart?includeTasks=true&onlyFailed=true", status: 202,
			shape: stateInfo(w.conn, "RUNNING", nonEmpty(taskState("RUNNING")))},
		{name: "restart with its tasks", method: "POST", path: c + "/restart?includeTasks=true&onlyFailed=false", status: 202,
			shape: stateInfo(w.conn, "RESTARTING", nonEmpty(taskState("RESTARTING")))},
		{name: "running again", method: "GET", path: c + "/status", status: 200, poll: true, shape: stateInfo(w.conn, "RUNNING", nonEmpty(taskState("RUNNING")))},
		{name: "restart a task", method: "POST", path: c + "/tasks/0/restart", status: 204},
		{name: "restart an unknown connector", method: "POST", path: "/connectors/" + w.missing + "/restart", status: 404, shape: errorBody(404)},

		// Stop, then the offsets can change.
		{name: "stop", method: "PUT", path: c + "/stop", status: 204},
		{name: "stopped", method: "GET", path: c + "/status", status: 200, poll: true, shape: stateInfo(w.conn, "STOPPED", emptyArray{})},
		{name: "a stopped connector lists no tasks", method: "GET", path: c, status: 200, shape: connectorInfo(w.conn, emptyArray{})},
		{name: "alter offsets", method: "PATCH", path: c + "/offsets",
			body:   fmt.Sprintf(`{"offsets": [{"partition": %s, "offset": {"cluster_time": {"t": 1700000000, "i": 1}}}]}`, partition),
			status: 200, shape: message},
		{name: "altered offsets", method: "GET", path: c + "/offsets", status: 200, shape: connectorOffsets(1)},
		{name: "the offsets read are offsets to write", method: "PATCH", path: c + "/offsets", echo: true, status: 200, shape: message},
		{name: "alter offsets with none", method: "PATCH", path: c + "/offsets", body: `{"offsets": []}`, status: 400, shape: errorBody(400, "offsets")},
		{name: "alter offsets as text", method: "PATCH", path: c + "/offsets", body: "offsets", contentType: "text/plain", status: 415, shape: errorBody(415)},
		{name: "reset the offsets of an unknown connector", method: "DELETE", path: "/connectors/" + w.missing + "/offsets", status: 404, shape: errorBody(404, w.missing)},
		{name: "reset offsets", method: "DELETE", path: c + "/offsets", status: 200, shape: message},
		{name: "reset offsets are gone", method: "GET", path: c + "/offsets", status: 200, poll: true, shape: exact{"offsets": emptyArray{}}},

		// KIP-980 initial_state.
		{name: "create stopped", method: "POST", path: "/connectors", body: w.create(w.stopped, "STOPPED"), status: 201,
			shape: connectorInfo(w.stopped, emptyArray{}), location: "/connectors/" + w.stopped},
		{name: "created stopped", method: "GET", path: "/connectors/" + w.stopped + "/status", status: 200, poll: true, shape: stateInfo(w.stopped, "STOPPED", emptyArray{})},
		{name: "create paused", method: "POST", path: "/connectors", body: w.create(w.paused, "PAUSED"), status: 201,
			shape: connectorInfo(w.paused, array(anyJSON)), location: "/connectors/" + w.paused},
		{name: "created paused", method: "GET", path: "/connectors/" + w.paused + "/status", status: 200, poll: true, shape: stateInfo(w.paused, "PAUSED", array(taskState("PAUSED")))},
		{name: "create in an unknown state", method: "POST", path: "/connectors", body: w.create(w.missing, "SLEEPING"), status: 400,
			shape: errorBody(400, "initial_state")},

		// LoggingResource.
		{name: "loggers", method: "GET", path: "/admin/loggers", status: 200, shape: mapOf{elem: loggerLevel, min: 1}},
		{name: "root logger", method: "GET", path: "/admin/loggers/root", status: 200, shape: loggerLevel},
		{name: "unknown logger", method: "GET", path: "/admin/loggers/org.example.Nothing", status: 404, shape: errorBody(404)},
		{name: "set a level", method: "PUT", path: "/admin/loggers/root", body: `{"level": "DEBUG"}`, status: 200, shape: nonEmpty(eq{"root"})},
		{name: "the level set", method: "GET", path: "/admin/loggers/root", status: 200, shape: fields{"level": eq{"DEBUG"}, "last_modified": num}},
		{name: "set an unknown level", method: "PUT", path: "/admin/loggers/root", body: `{"level": "LOUD"}`, status: 400, shape: errorBody(400, "LOUD")},
		{name: "set a level as text", method: "PUT", path: "/admin/loggers/root", body: "DEBUG", contentType: "text/plain", status: 415, shape: errorBody(415)},
		{name: "set a level on every worker", method: "PUT", path: "/admin/loggers/root?scope=cluster", body: `{"level": "INFO"}`, status: 204},
		{name: "set the level back", method: "PUT", path: "/admin/loggers/root", body: `{"level": "INFO"}`, status: 200, shape: array(str)},

		// Delete.
		{name: "delete", method: "DELETE", path: c, status: 204},
		{name: "deleted", method: "GET", path: c, status: 404, poll: true, shape: errorBody(404, w.conn)},
		{name: "delete again", method: "DELETE", path: c, status: 404, shape: errorBody(404, w.conn)},

		// What JAX-RS answers for what no resource serves, through ConnectExceptionMapper.
		{name: "unknown path", method: "GET", path: "/no/such/path", status: 404, shape: errorBody(404, "HTTP 404 Not Found")},
		{name: "method not allowed", method: "DELETE", path: "/connector-plugins", status: 405, shape: errorBody(405, "HTTP 405 Method Not Allowed")},
	}
}

// TestKafkaConnectContract replays the contract through each target -contract.via names: a
// follower of a 3-node cluster (every write forwarded to the leader), the leader, a
// standalone process.
func TestKafkaConnectContract(t *testing.T) {
	for _, target := range strings.Split(*via, ",") {
		t.Run(target, func(t *testing.T) {
			run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
			w := world{mongo: testenv.Mongo(t), db: "contract_" + run, prefix: "contract" + run,
				conn: "orders-" + run, put: "put-" + run, stopped: "stopped-" + run, paused: "paused-" + run, missing: "missing-" + run}
			seedCollection(t, w.mongo, w.db, "orders")
			var addr string
			switch target {
			case "follower":
				addr = startCluster(t, run)[1].http
			case "leader":
				addr = startCluster(t, run)[0].http
			case "standalone":
				addr = startStandalone(t, run, w.create("file-"+run, "")).http
			default:
				t.Fatalf("-contract.via: unknown target %q: give follower, leader or standalone", target)
			}
			start := time.Now()
			var last []byte
			for _, x := range contract(w) {
				if x.echo {
					x.body = string(last)
				}
				last = x.replay(t, addr)
			}
			t.Logf("%d exchanges through the %s in %s", len(contract(w)), target, time.Since(start).Round(time.Millisecond))
		})
	}
}

// seedCollection writes a document into db.coll, so that the connectors have a collection to
// capture.
func seedCollection(t *testing.T, uri, db, coll string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	if _, err := client.Database(db).Collection(coll).InsertOne(ctx, bson.D{{Key: "item", Value: "seed"}}); err != nil {
		t.Fatalf("seed %s.%s: %v", db, coll, err)
	}
}

// replay sends the exchange to addr and checks the answer as a subtest, and returns the
// answer's body. A failed exchange does not end the replay: what fails after it shows what
// else depends on it.
func (x exchange) replay(t *testing.T, addr string) []byte {
	var data []byte
	t.Run(x.name, func(t *testing.T) {
		deadline := time.Now().Add(pollTimeout)
		for {
			var problems []string
			var err error
			problems, data, err = x.answer(addr)
			if err != nil {
				t.Fatalf("%s %s: %v", x.method, x.path, err)
			}
			switch {
			case len(problems) == 0:
				return
			case x.poll && time.Now().Before(deadline):
				time.Sleep(250 * time.Millisecond)
				continue
			}
			t.Fatalf("%s %s:\n  %s", x.method, x.path, strings.Join(problems, "\n  "))
		}
	})
	return data
}

// answer sends the request once and returns how its answer differs from the contract, and
// the answer's body.
func (x exchange) answer(addr string) ([]string, []byte, error) {
	var body io.Reader
	if x.body != "" {
		body = strings.NewReader(x.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, x.method, "http://"+addr+x.path, body)
	if err != nil {
		return nil, nil, err
	}
	if x.body != "" {
		ct := x.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	var problems []string
	if resp.StatusCode != x.status {
		problems = append(problems, fmt.Sprintf("status %d, want %d", resp.StatusCode, x.status))
	}
	if x.location != "" && !strings.HasSuffix(resp.Header.Get("Location"), x.location) {
		problems = append(problems, fmt.Sprintf("Location %q, want one ending in %q", resp.Header.Get("Location"), x.location))
	}
	switch {
	case x.shape == nil && len(bytes.TrimSpace(data)) > 0:
		problems = append(problems, fmt.Sprintf("body %q, want none", data))
	case x.shape != nil:
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
			problems = append(problems, fmt.Sprintf("Content-Type %q, want application/json", resp.Header.Get("Content-Type")))
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			problems = append(problems, fmt.Sprintf("body %q is not JSON: %v", data, err))
			break
		}
		problems = append(problems, x.shape.check("$", v)...)
	}
	if len(problems) > 0 {
		problems = append(problems, fmt.Sprintf("body: %s", short(string(data))))
	}
	return problems, data, nil
}
