package api

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// call sends a request with the given Content-Type ("" sends none) and returns the answer.
func send(t *testing.T, method, url, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

// ordersStored is the config of validConnector as the API stores it.
var ordersStored = map[string]string{"connector.class": "mongodb",
	"mongodb.connection.string": "mongodb://app:s3cret@db:27017/?authSource=admin", "topic.prefix": "shop"}

func TestPutConfigAnswersCreatedWithLocationThenOK(t *testing.T) {
	srv := serveFake(t, newFakeCluster("n1", true))
	cfg := `{"connector.class":"mongodb","mongodb.connection.string":"mongodb://db:27017","topic.prefix":"shop"}`
	status, header, body := send(t, http.MethodPut, srv.URL+"/connectors/new%20one/config", "application/json", cfg)
	if status != http.StatusCreated || header.Get("Location") != "/connectors/new%20one" || !strings.Contains(body, `"name":"new one"`) {
		t.Errorf("PUT creating = %d Location %q %s, want 201 with Location", status, header.Get("Location"), body)
	}
	status, header, body = send(t, http.MethodPut, srv.URL+"/connectors/new%20one/config", "application/json", cfg)
	if status != http.StatusOK || header.Get("Location") != "" {
		t.Errorf("PUT updating = %d Location %q %s, want 200 without Location", status, header.Get("Location"), body)
	}
}

func TestConfigShowsItsNameAndStoresItNot(t *testing.T) {
	f := newFakeCluster("n1", true)
	srv := serveFake(t, f)
	withName := `{"connector.class":"mongodb","mongodb.connection.string":"mongodb://db:27017","topic.prefix":"shop","name":"orders"}`
	if status, _, body := send(t, http.MethodPut, srv.URL+"/connectors/orders/config", "application/json", withName); status != http.StatusCreated {
		t.Fatalf("PUT = %d %s", status, body)
	}
	if _, ok := f.connectors["orders"].Config["name"]; ok {
		t.Errorf("stored config %v keeps its name", f.connectors["orders"].Config)
	}
	for _, path := range []string{"/connectors/orders/config", "/connectors/orders"} {
		_, _, body := send(t, http.MethodGet, srv.URL+path, "", "")
		if !strings.Contains(body, `"name":"orders"`) || !strings.Contains(body, `"topic.prefix":"shop"`) {
			t.Errorf("GET %s = %s, want the config with its name", path, body)
		}
	}
	status, _, body := send(t, http.MethodPut, srv.URL+"/connectors/orders/config", "application/json", strings.Replace(withName, `"name":"orders"`, `"name":"other"`, 1))
	if status != http.StatusBadRequest || !strings.Contains(body, `does not match the connector's name`) {
		t.Errorf("PUT with another name = %d %s, want 400", status, body)
	}
}

func TestPatchConfig(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
		wantStatus       int
		want             map[string]string // the stored config after, nil: unchanged
		wantBody         string
	}{
		{name: "a key set and one added", path: "orders", body: `{"topic.prefix":"shop2","tasks.max":4}`, wantStatus: 200,
			want: map[string]string{"connector.class": "mongodb", "mongodb.connection.string": ordersStored["mongodb.connection.string"],
				"topic.prefix": "shop2", "tasks.max": "4", "snapshot.mode": "initial"}, wantBody: `"topic.prefix":"shop2"`},
		{name: "null removes a key", path: "orders", body: `{"snapshot.mode":null,"topic.prefix":"x"}`, wantStatus: 200,
			want: map[string]string{"connector.class": "mongodb", "mongodb.connection.string": ordersStored["mongodb.connection.string"],
				"topic.prefix": "x"}},
		{name: "the secret as shown keeps the stored one", path: "orders",
			body: `{"mongodb.connection.string":"mongodb://app:[hidden]@db:27017/?authSource=admin","topic.prefix":"y"}`, wantStatus: 200,
			want: map[string]string{"connector.class": "mongodb", "mongodb.connection.string": ordersStored["mongodb.connection.string"],
				"topic.prefix": "y", "snapshot.mode": "initial"}},
		{name: "removing a required key is refused", path: "orders", body: `{"topic.prefix":null}`, wantStatus: 400, wantBody: `config \"topic.prefix\": is required`},
		{name: "an invalid value is refused", path: "orders", body: `{"shards":"0"}`, wantStatus: 400, wantBody: `config \"shards\"`},
		{name: "not an object", path: "orders", body: `["x"]`, wantStatus: 400, wantBody: `request body is not a config object: send {\"key\": \"value\", ...}, null to remove a key`},
		{name: "null", path: "orders", body: `null`, wantStatus: 400, wantBody: "request body is not a config object"},
		{name: "not JSON", path: "orders", body: `{"shards":`, wantStatus: 400, wantBody: "request body is not valid JSON"},
		{name: "unknown connector", path: "nope", body: `{"topic.prefix":"x"}`, wantStatus: 404, wantBody: "Connector nope not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster("n1", true)
			f.connectors["orders"] = Connector{Name: "orders", Config: with(ordersStored, "snapshot.mode", "initial"), State: StateRunning}
			srv := serveFake(t, f)
			status, _, body := send(t, http.MethodPatch, srv.URL+"/connectors/"+tc.path+"/config", "application/json", tc.body)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) || strings.Contains(body, "s3cret") {
				t.Errorf("PATCH = %d %s, want %d with %s and no secret", status, body, tc.wantStatus, tc.wantBody)
			}
			if tc.want != nil && !equal(f.connectors["orders"].Config, tc.want) {
				t.Errorf("stored %v, want %v", f.connectors["orders"].Config, tc.want)
			}
		})
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestABodyThatIsNotJSONIs415(t *testing.T) {
	f := newFakeCluster("n1", true)
	f.connectors["orders"] = Connector{Name: "orders", Config: ordersStored}
	srv := serveFake(t, f)
	for _, route := range [][2]string{{http.MethodPost, "/connectors"}, {http.MethodPut, "/connectors/orders/config"},
		{http.MethodPatch, "/connectors/orders/config"}} {
		for _, ct := range []string{"text/plain", "", "application/x-www-form-urlencoded"} {
			status, _, body := send(t, route[0], srv.URL+route[1], ct, validConnector)
			if status != http.StatusUnsupportedMediaType || !strings.Contains(body, `"error_code":415`) {
				t.Errorf("%s %s as %q = %d %s, want 415", route[0], route[1], ct, status, body)
			}
		}
	}
	if status, _, body := send(t, http.MethodPut, srv.URL+"/connectors/orders/config", "application/json; charset=utf-8",
		`{"connector.class":"mongodb","mongodb.connection.string":"mongodb://db:27017","topic.prefix":"shop"}`); status != http.StatusOK {
		t.Errorf("PUT as application/json; charset=utf-8 = %d %s, want 200", status, body)
	}
	if status, _, body := send(t, http.MethodPost, srv.URL+"/connectors/orders/restart", "", ""); status != http.StatusNoContent {
		t.Errorf("POST restart without a body = %d %s, want 204", status, body)
	}
}

func TestAStoppedConnectorListsNoTasks(t *testing.T) {
	f := newFakeCluster("n1", true)
	tasks := []Task{{ID: 0, Name: "shop.a#0-of-1", Config: map[string]string{"task.name": "shop.a#0-of-1"}}}
	f.connectors["orders"] = Connector{Name: "orders", Config: ordersStored, State: StateStopped, Tasks: tasks}
	f.status["orders"] = ConnectorStatus{Name: "orders", Connector: StateInfo{State: StateStopped, WorkerID: "n1"},
		Tasks: []TaskStatus{{ID: 0, State: StateUnassigned}}, Type: "source"}
	srv := serveFake(t, f)
	for path, want := range map[string]string{
		"/connectors/orders/tasks":  `[]`,
		"/connectors/orders":        `"tasks":[]`,
		"/connectors/orders/status": `"tasks":[]`,
		"/connectors?expand=status": `"tasks":[]`,
	} {
		if status, _, body := send(t, http.MethodGet, srv.URL+path, "", ""); status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s of a STOPPED connector = %d %s, want %s", path, status, body, want)
		}
	}
	if status, _, body := send(t, http.MethodGet, srv.URL+"/connectors/orders/tasks/0/status", "", ""); status != http.StatusNotFound {
		t.Errorf("GET a task of a STOPPED connector = %d %s, want 404", status, body)
	}
}

func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		query        string
		connector    string // its state
		wantStatus   int
		wantRestarts []string
		wantStates   []string // connector's, then its tasks', in the 202 answer
	}{
		{query: "", connector: StateRunning, wantStatus: 204, wantRestarts: []string{"orders"}},
		{query: "?includeTasks=false&onlyFailed=false", connector: StateRunning, wantStatus: 204, wantRestarts: []string{"orders"}},
		{query: "?includeTasks=true", connector: StateRunning, wantStatus: 202, wantRestarts: []string{"orders", "orders/0", "orders/1"},
			wantStates: []string{StateRestarting, StateRestarting, StateRestarting}},
		{query: "?includeTasks=true&onlyFailed=true", connector: StateRunning, wantStatus: 202, wantRestarts: []string{"orders/1"},
			wantStates: []string{StateRunning, StateRunning, StateRestarting}},
		{query: "?onlyFailed=true", connector: StateRunning, wantStatus: 202,
			wantStates: []string{StateRunning, StateRunning, StateFailed}},
		{query: "?onlyFailed=true", connector: StateFailed, wantStatus: 202, wantRestarts: []string{"orders"},
			wantStates: []string{StateRestarting, StateRunning, StateFailed}},
	} {
		t.Run(tc.query+"/"+tc.connector, func(t *testing.T) {
			f := newFakeCluster("n1", true)
			f.connectors["orders"] = Connector{Name: "orders", Config: ordersStored}
			f.status["orders"] = ConnectorStatus{Name: "orders", Connector: StateInfo{State: tc.connector, WorkerID: "n1"},
				Tasks: []TaskStatus{{ID: 0, State: StateRunning, WorkerID: "n1"}, {ID: 1, State: StateFailed, WorkerID: "n2"}}, Type: "source"}
			srv := serveFake(t, f)
			status, _, body := send(t, http.MethodPost, srv.URL+"/connectors/orders/restart"+tc.query, "", "")
			if status != tc.wantStatus || !slices.Equal(f.restarts, tc.wantRestarts) {
				t.Fatalf("restart%s = %d %s restarting %v, want %d restarting %v", tc.query, status, body, f.restarts, tc.wantStatus, tc.wantRestarts)
			}
			if tc.wantStates == nil {
				return
			}
			var st ConnectorStatus
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatal(err)
			}
			got := []string{st.Connector.State}
			for _, ts := range st.Tasks {
				got = append(got, ts.State)
			}
			if !slices.Equal(got, tc.wantStates) {
				t.Errorf("202 states %v, want %v (%s)", got, tc.wantStates, body)
			}
		})
	}
	srv := serveFake(t, newFakeCluster("n1", true))
	for _, q := range []string{"", "?includeTasks=true"} {
		if status, _, body := send(t, http.MethodPost, srv.URL+"/connectors/nope/restart"+q, "", ""); status != http.StatusNotFound {
			t.Errorf("restart%s of a missing connector = %d %s, want 404", q, status, body)
		}
	}
}

func TestHealthHasKIP1017sShape(t *testing.T) {
	for _, tc := range []struct {
		name       string
		health     Health
		wantStatus int
		wantState  string
		wantReadyz int
	}{
		{"a node with a leader, not fenced", Health{NodeID: "n1", Leader: "n2"}, 200, "healthy", 200},
		{"a node that knows no leader", Health{NodeID: "n1", Fenced: true}, 503, "starting", 503},
		{"a fenced node", Health{NodeID: "n1", Leader: "n2", Fenced: true}, 500, "unhealthy", 503},
		{"a node that refused a newer command", Health{NodeID: "n1", Leader: "n2", RefusedCommand: `unsupported command: "assign" version 2`}, 500, "unhealthy", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster("n1", true)
			f.health = tc.health
			srv := serveFake(t, f)
			status, _, body := send(t, http.MethodGet, srv.URL+"/health", "", "")
			var h Health
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatal(err)
			}
			if status != tc.wantStatus || h.Status != tc.wantState || h.Message == "" || h.NodeID != "n1" {
				t.Errorf("GET /health = %d %s, want %d %q with a message", status, body, tc.wantStatus, tc.wantState)
			}
			if status, _, body := send(t, http.MethodGet, srv.URL+"/readyz", "", ""); status != tc.wantReadyz {
				t.Errorf("GET /readyz = %d %s, want %d", status, body, tc.wantReadyz)
			}
		})
	}
}

func TestTopics(t *testing.T) {
	f := newFakeCluster("n1", true)
	f.connectors["orders"] = Connector{Name: "orders", Config: ordersStored, State: StateStopped, Tasks: []Task{
		{ID: 0, Spec: taskid.Spec{Members: []taskid.Spec{{DB: "shop", Coll: "b", Shards: 1}, {DB: "shop", Coll: "a", Shard: 0, Shards: 2}}}},
		{ID: 1, Spec: taskid.Spec{DB: "shop", Coll: "a", Shard: 1, Shards: 2}},
	}}
	f.connectors["idle"] = Connector{Name: "idle", Config: ordersStored}
	srv := serveFake(t, f)
	for _, tc := range []struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		{http.MethodGet, "/connectors/orders/topics", 200, `{"orders":{"topics":["shop.shop.a","shop.shop.b"]}}`},
		{http.MethodGet, "/connectors/idle/topics", 200, `{"idle":{"topics":[]}}`},
		{http.MethodGet, "/connectors/nope/topics", 404, `{"error_code":404,"message":"Connector nope not found"}`},
		{http.MethodPut, "/connectors/orders/topics/reset", 202, ``},
		{http.MethodPut, "/connectors/nope/topics/reset", 404, `{"error_code":404,"message":"Connector nope not found"}`},
	} {
		status, _, body := send(t, tc.method, srv.URL+tc.path, "", "")
		if status != tc.wantStatus || strings.TrimSpace(body) != tc.wantBody {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, status, body, tc.wantStatus, tc.wantBody)
		}
	}
}

func TestOffsets(t *testing.T) {
	shard := Offset{Partition: json.RawMessage(`{"db":"shop","coll":"a","shard":"0-of-1"}`),
		Offset: json.RawMessage(`{"v":1,"resume_token":{"_data":"82"},"cluster_time":{"t":5,"i":1},"txn_op_index":0,"snapshot":null,"updated_ms":7}`)}
	f := newFakeCluster("n1", true)
	f.connectors["running"] = Connector{Name: "running", Config: ordersStored, State: StateRunning}
	f.connectors["stopped"] = Connector{Name: "stopped", Config: ordersStored, State: StateStopped}
	f.offsets = map[string][]Offset{"running": {shard}, "stopped": {shard}}
	srv := serveFake(t, f)
	patch := `{"offsets":[{"partition":{"db":"shop","coll":"b","shard":"0-of-1"},"offset":{"cluster_time":{"t":9,"i":0}}}]}`
	for _, tc := range []struct {
		method, path, contentType, body string
		wantStatus                      int
		wantBody                        string
	}{
		{"GET", "/connectors/running/offsets", "", "", 200,
			`{"offsets":[{"partition":{"db":"shop","coll":"a","shard":"0-of-1"},"offset":{"v":1,"resume_token":{"_data":"82"}`},
		{"GET", "/connectors/nope/offsets", "", "", 404, `Connector nope not found`},
		{"DELETE", "/connectors/running/offsets", "", "", 400, `must be in the STOPPED state`},
		{"PATCH", "/connectors/running/offsets", "application/json", patch, 400, `PUT /connectors/running/stop`},
		{"DELETE", "/connectors/nope/offsets", "", "", 404, `Connector nope not found`},
		{"PATCH", "/connectors/stopped/offsets", "text/plain", patch, 415, `"error_code":415`},
		{"PATCH", "/connectors/stopped/offsets", "application/json", `{"offsets":[]}`, 400, `request has no offsets`},
		{"PATCH", "/connectors/stopped/offsets", "application/json", patch, 200, `{"message":"The offsets for this connector have been altered successfully"}`},
		{"GET", "/connectors/stopped/offsets", "", "", 200, `{"partition":{"db":"shop","coll":"b","shard":"0-of-1"},"offset":{"cluster_time":{"t":9,"i":0}}}]}`},
		{"DELETE", "/connectors/stopped/offsets", "", "", 200, `{"message":"The offsets for this connector have been reset successfully"}`},
		{"GET", "/connectors/stopped/offsets", "", "", 200, `{"offsets":[]}`},
	} {
		status, _, body := send(t, tc.method, srv.URL+tc.path, tc.contentType, tc.body)
		if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, status, body, tc.wantStatus, tc.wantBody)
		}
	}
}
