package api

import (
	"context"
	"encoding/json"
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
	"github.com/mongorelay/mongorelay/internal/jsonerr"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/mongosource"
)

// fakeCluster is a node for the handlers: a leader, or a follower naming leaderHTTP.
type fakeCluster struct {
	mu         sync.Mutex
	id         string
	leads      bool
	leaderHTTP string // "" while no leader is known (on a follower)
	connectors map[string]Connector
	status     map[string]ConnectorStatus
	calls      int      // writes attempted
	fail       error    // what every write returns on the leader, when not nil
	restarts   []string // connectors and tasks restarted: "name", "name/0"
	snapshots  []string // snapshot requests: "name:db.a,db.b"
	health     Health
	offsets    map[string][]Offset
	logLevels  map[string]string // set with scope=cluster, by logger
	applied    uint64            // the index of the state: the writes applied
	waited     []uint64          // the indexes WaitApplied was asked for
}

func newFakeCluster(id string, leads bool) *fakeCluster {
	return &fakeCluster{id: id, leads: leads, connectors: map[string]Connector{}, status: map[string]ConnectorStatus{},
		health: Health{NodeID: id, Leader: "leader"}}
}

func (f *fakeCluster) notLeader() error {
	if f.leaderHTTP == "" {
		return &forward.NotLeaderError{}
	}
	return &forward.NotLeaderError{LeaderID: "leader", LeaderHTTP: f.leaderHTTP}
}

// write runs fn on the leader, or answers as a follower.
func (f *fakeCluster) write(fn func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if !f.leads {
		return f.notLeader()
	}
	if f.fail != nil {
		return f.fail
	}
	if err := fn(); err != nil {
		return err
	}
	f.applied++
	return nil
}

func (f *fakeCluster) AppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *fakeCluster) WaitApplied(_ context.Context, index uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waited = append(f.waited, index)
	return nil
}

func (f *fakeCluster) Info() Info {
	return Info{Version: "v1", Commit: "abc", ClusterID: "c1", NodeID: f.id}
}

func (f *fakeCluster) Connectors() []Connector {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Connector
	for _, c := range f.connectors {
		out = append(out, c)
	}
	return out
}

func (f *fakeCluster) Connector(name string) (Connector, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.connectors[name]
	return c, ok
}

func (f *fakeCluster) CreateConnector(_ context.Context, name string, config map[string]string, initial string) error {
	return f.write(func() error {
		if _, ok := f.connectors[name]; ok {
			return fmt.Errorf("create %q: %w", name, ErrExists)
		}
		f.connectors[name] = Connector{Name: name, Config: config, State: StateRunning}
		return nil
	})
}

func (f *fakeCluster) PutConnectorConfig(_ context.Context, name string, config map[string]string) (bool, error) {
	var created bool
	err := f.write(func() error {
		_, exists := f.connectors[name]
		created = !exists
		f.connectors[name] = Connector{Name: name, Config: config, State: StateRunning}
		return nil
	})
	return created, err
}

func (f *fakeCluster) DeleteConnector(_ context.Context, name string) error {
	return f.write(func() error {
		if _, ok := f.connectors[name]; !ok {
			return fmt.Errorf("delete %q: %w", name, ErrNotFound)
		}
		delete(f.connectors, name)
		return nil
	})
}

func (f *fakeCluster) SetTargetState(context.Context, string, string) error {
	return f.write(func() error { return nil })
}
func (f *fakeCluster) RestartConnector(_ context.Context, name string) error {
	return f.write(func() error {
		if _, ok := f.connectors[name]; !ok {
			return fmt.Errorf("restart %q: %w", name, ErrNotFound)
		}
		f.restarts = append(f.restarts, name)
		return nil
	})
}
func (f *fakeCluster) RestartTasks(_ context.Context, name string, ids []int) error {
	return f.write(func() error {
		for _, id := range ids {
			f.restarts = append(f.restarts, fmt.Sprintf("%s/%d", name, id))
		}
		return nil
	})
}

// RequestSnapshot answers as a node does: a STOPPED connector refuses, and so does a
// collection outside "db".
func (f *fakeCluster) RequestSnapshot(_ context.Context, name string, collections []string) (uint64, error) {
	err := f.write(func() error {
		c, ok := f.connectors[name]
		switch {
		case !ok:
			return fmt.Errorf("snapshot %q: %w", name, ErrNotFound)
		case c.State == StateStopped:
			return fmt.Errorf("%w: connector %q is stopped", ErrConflict, name)
		}
		for _, ns := range collections {
			if !strings.HasPrefix(ns, "db.") {
				return fmt.Errorf("%w: connector %q streams no collection %s", ErrBadRequest, name, ns)
			}
		}
		f.snapshots = append(f.snapshots, name+":"+strings.Join(collections, ","))
		return nil
	})
	return uint64(len(f.snapshots)), err
}

func (f *fakeCluster) ConnectorStatus(_ context.Context, name string) (ConnectorStatus, error) {
	var st ConnectorStatus
	err := f.write(func() error {
		var ok bool
		if st, ok = f.status[name]; !ok {
			return fmt.Errorf("status of %q: %w", name, ErrNotFound)
		}
		return nil
	})
	return st, err
}

func (f *fakeCluster) ConnectorOffsets(_ context.Context, name string) ([]Offset, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.connectors[name]; !ok {
		return nil, fmt.Errorf("offsets of %q: %w", name, ErrNotFound)
	}
	return f.offsets[name], nil
}

// changeOffsets is the fake's offsets change: on a STOPPED connector, fn's offsets replace its
// own.
func (f *fakeCluster) changeOffsets(name string, fn func([]Offset) []Offset) error {
	return f.write(func() error {
		cn, ok := f.connectors[name]
		switch {
		case !ok:
			return fmt.Errorf("offsets of %q: %w", name, ErrNotFound)
		case cn.State != StateStopped:
			return fmt.Errorf("%w: %q is %s", ErrNotStopped, name, cn.State)
		}
		if f.offsets == nil {
			f.offsets = map[string][]Offset{}
		}
		f.offsets[name] = fn(f.offsets[name])
		return nil
	})
}

func (f *fakeCluster) ResetOffsets(_ context.Context, name string) error {
	return f.changeOffsets(name, func([]Offset) []Offset { return nil })
}

func (f *fakeCluster) AlterOffsets(_ context.Context, name string, offs []Offset) error {
	return f.changeOffsets(name, func(old []Offset) []Offset { return append(old, offs...) })
}

func (f *fakeCluster) SetClusterLogLevel(_ context.Context, logger, level string) error {
	return f.write(func() error {
		if f.logLevels == nil {
			f.logLevels = map[string]string{}
		}
		f.logLevels[logger] = level
		return nil
	})
}

func (f *fakeCluster) Overview(context.Context) (Overview, error) {
	return Overview{NodeID: f.id, RaftState: "Follower", Nodes: []Member{}, Assignments: []Assignment{}}, nil
}

func (f *fakeCluster) Health() Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health
}

func (f *fakeCluster) RemoveNode(context.Context, string) error {
	return f.write(func() error { return nil })
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func serveFake(t *testing.T, f *fakeCluster) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewServer(f, testCatalog(t), WithLogger(quiet), WithForwardWait(time.Second)).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

const validConnector = `{"name":"orders","config":{"connector.class":"mongodb",
	"mongodb.connection.string":"mongodb://app:s3cret@db:27017/?authSource=admin","topic.prefix":"shop"}}`

func TestCreateConnector(t *testing.T) {
	f := newFakeCluster("n1", true)
	srv := serveFake(t, f)

	status, body := do(t, http.MethodPost, srv.URL+"/connectors", validConnector)
	if status != http.StatusCreated {
		t.Fatalf("POST = %d %s", status, body)
	}
	if strings.Contains(body, "s3cret") || !strings.Contains(body, "[hidden]") || !strings.Contains(body, `"name":"orders"`) {
		t.Errorf("201 body does not redact the password: %s", body)
	}
	if got := f.connectors["orders"].Config["mongodb.connection.string"]; !strings.Contains(got, "s3cret") {
		t.Errorf("the stored config lost the secret: %q", got)
	}

	status, body = do(t, http.MethodPost, srv.URL+"/connectors", validConnector)
	if status != http.StatusConflict || !strings.Contains(body, `"error_code":409`) || !strings.Contains(body, "Connector orders already exists") {
		t.Errorf("second POST = %d %s, want 409", status, body)
	}

	for _, path := range []string{"/connectors/orders", "/connectors/orders/config", "/connectors?expand=info"} {
		status, body = do(t, http.MethodGet, srv.URL+path, "")
		if status != http.StatusOK || strings.Contains(body, "s3cret") {
			t.Errorf("GET %s = %d %s: want 200 without the secret", path, status, body)
		}
	}
}

// TestHiddenSentBackKeepsTheStoredSecret reads a config with GET and sends it back with PUT:
// the stored password stays, and a [hidden] that stands for nothing stored is refused.
func TestHiddenSentBackKeepsTheStoredSecret(t *testing.T) {
	f := newFakeCluster("n1", true)
	srv := serveFake(t, f)
	if status, body := do(t, http.MethodPost, srv.URL+"/connectors", validConnector); status != http.StatusCreated {
		t.Fatalf("POST = %d %s", status, body)
	}
	_, shown := do(t, http.MethodGet, srv.URL+"/connectors/orders/config", "")
	var cfg map[string]string
	if err := json.Unmarshal([]byte(shown), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["topic.prefix"] = "shop2"
	sent, _ := json.Marshal(cfg)
	if status, body := do(t, http.MethodPut, srv.URL+"/connectors/orders/config", string(sent)); status != http.StatusOK || strings.Contains(body, "s3cret") {
		t.Fatalf("PUT of the config as shown = %d %s", status, body)
	}
	stored := f.connectors["orders"].Config
	if stored["mongodb.connection.string"] != "mongodb://app:s3cret@db:27017/?authSource=admin" || stored["topic.prefix"] != "shop2" {
		t.Errorf("stored after PUT: %v, want the password kept and the prefix changed", stored)
	}

	cfg["mongodb.connection.string"] = "mongodb://app:[hidden]@otherdb:27017/"
	sent, _ = json.Marshal(cfg)
	status, body := do(t, http.MethodPut, srv.URL+"/connectors/orders/config", string(sent))
	if status != http.StatusBadRequest || !strings.Contains(body, "contains [hidden]") {
		t.Errorf("PUT of a changed value around [hidden] = %d %s, want 400", status, body)
	}
	status, body = do(t, http.MethodPost, srv.URL+"/connectors", strings.Replace(validConnector, "s3cret", "[hidden]", 1))
	if status != http.StatusBadRequest || !strings.Contains(body, "contains [hidden]") {
		t.Errorf("POST of a new connector with [hidden] = %d %s, want 400", status, body)
	}
}

// TestReferencesAreShownNotResolved stores a password given as a reference: responses show
// the reference, never the value, which only validation reads.
func TestReferencesAreShownNotResolved(t *testing.T) {
	t.Setenv("MR_API_TEST_PW", "V4lueOfRef")
	f := newFakeCluster("n1", true)
	srv := serveFake(t, f)
	conn := strings.Replace(validConnector, "s3cret", "${env:MR_API_TEST_PW}", 1)
	if status, body := do(t, http.MethodPost, srv.URL+"/connectors", conn); status != http.StatusCreated || !strings.Contains(body, "${env:MR_API_TEST_PW}") {
		t.Fatalf("POST = %d %s, want 201 showing the reference", status, body)
	}
	if got := f.connectors["orders"].Config["mongodb.connection.string"]; got != "mongodb://app:${env:MR_API_TEST_PW}@db:27017/?authSource=admin" {
		t.Errorf("stored %q, want the reference", got)
	}
	for _, path := range []string{"/connectors/orders", "/connectors/orders/config", "/connectors?expand=info"} {
		if status, body := do(t, http.MethodGet, srv.URL+path, ""); status != http.StatusOK || strings.Contains(body, "V4lueOfRef") || !strings.Contains(body, "${env:MR_API_TEST_PW}") {
			t.Errorf("GET %s = %d %s: want the reference, not its value", path, status, body)
		}
	}
	status, body := do(t, http.MethodPost, srv.URL+"/connectors", strings.Replace(conn, "MR_API_TEST_PW", "MR_API_TEST_UNSET", 1))
	if status != http.StatusBadRequest || !strings.Contains(body, "MR_API_TEST_UNSET") || !strings.Contains(body, "is not set on this node") {
		t.Errorf("POST with an unset variable = %d %s, want 400 naming it", status, body)
	}
}

func TestCreateConnectorInvalid(t *testing.T) {
	srv := serveFake(t, newFakeCluster("n1", true))
	status, body := do(t, http.MethodPost, srv.URL+"/connectors",
		`{"name":"bad","config":{"connector.class":"mongodb","shards":"0","snapshot.mode":"sometimes","topic.prefx":"x"}}`)
	if status != http.StatusBadRequest {
		t.Fatalf("POST = %d %s, want 400", status, body)
	}
	var eb jsonerr.Body
	if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Code != 400 {
		t.Fatalf("error body %s: %v", body, err)
	}
	for _, key := range []string{"mongodb.connection.string", "topic.prefix", "shards", "snapshot.mode", "topic.prefx"} {
		if !strings.Contains(eb.Message, `"`+key+`"`) {
			t.Errorf("400 message does not name %s: %s", key, eb.Message)
		}
	}
	status, body = do(t, http.MethodPost, srv.URL+"/connectors", `{"name":"x"`)
	if status != http.StatusBadRequest {
		t.Errorf("malformed JSON = %d %s", status, body)
	}
}

func TestTaskConfigs(t *testing.T) {
	f := newFakeCluster("n1", true)
	f.connectors["orders"] = Connector{Name: "orders", Config: map[string]string{"tasks.max": "2"}, Tasks: []Task{
		{ID: 0, Name: "shop.a#0-of-1+shop.b#0-of-1", Config: map[string]string{
			"task.name": "shop.a#0-of-1+shop.b#0-of-1", "task.collection.shards": "shop.a#0-of-1,shop.b#0-of-1"}},
		{ID: 1, Name: "shop.c#0-of-1", Config: map[string]string{
			"task.name": "shop.c#0-of-1", "task.database": "shop", "task.collection": "c", "task.shard": "0-of-1"}},
	}}
	srv := serveFake(t, f)
	status, body := do(t, http.MethodGet, srv.URL+"/connectors/orders/tasks", "")
	if status != http.StatusOK {
		t.Fatalf("GET tasks = %d %s", status, body)
	}
	var got []taskInfo
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got) != 2 {
		t.Fatalf("tasks %s: %v", body, err)
	}
	shared, single := got[0].Config, got[1].Config
	if shared["task.collection.shards"] != "shop.a#0-of-1,shop.b#0-of-1" || shared["task.collection"] != "" {
		t.Errorf("a task sharing collection shards has config %v", shared)
	}
	if single["task.collection"] != "c" || single["task.shard"] != "0-of-1" || single["task.collection.shards"] != "" {
		t.Errorf("a one-shard task has config %v", single)
	}
}

func TestDeleteAndMissing(t *testing.T) {
	f := newFakeCluster("n1", true)
	f.connectors["orders"] = Connector{Name: "orders", Config: map[string]string{}}
	srv := serveFake(t, f)
	if status, body := do(t, http.MethodDelete, srv.URL+"/connectors/orders", ""); status != http.StatusNoContent {
		t.Errorf("DELETE = %d %s", status, body)
	}
	status, body := do(t, http.MethodDelete, srv.URL+"/connectors/orders", "")
	if status != http.StatusNotFound || body != `{"error_code":404,"message":"Connector orders not found"}` {
		t.Errorf("DELETE again = %d %s", status, body)
	}
	if status, _ := do(t, http.MethodGet, srv.URL+"/connectors/nope/status", ""); status != http.StatusNotFound {
		t.Errorf("status of a missing connector = %d", status)
	}
	if status, body := do(t, http.MethodGet, srv.URL+"/nope", ""); status != http.StatusNotFound || !strings.Contains(body, `"error_code":404`) {
		t.Errorf("unknown path = %d %s", status, body)
	}
}

// TestFollowerForwardsWrites: a write on a follower is applied by the leader, one hop, and
// the client gets the leader's status code and body.
func TestFollowerForwardsWrites(t *testing.T) {
	leader := newFakeCluster("leader", true)
	leader.status["orders"] = ConnectorStatus{Name: "orders", Connector: StateInfo{State: StateRunning, WorkerID: "leader"}, Tasks: []TaskStatus{}, Type: "source"}
	leaderSrv := serveFake(t, leader)
	follower := newFakeCluster("n2", false)
	follower.leaderHTTP = strings.TrimPrefix(leaderSrv.URL, "http://")
	followerSrv := serveFake(t, follower)

	status, body := do(t, http.MethodPost, followerSrv.URL+"/connectors", validConnector)
	if status != http.StatusCreated || !strings.Contains(body, `"name":"orders"`) {
		t.Fatalf("POST on the follower = %d %s, want the leader's 201", status, body)
	}
	if _, ok := leader.connectors["orders"]; !ok {
		t.Error("the leader did not apply the forwarded write")
	}
	status, body = do(t, http.MethodPost, followerSrv.URL+"/connectors", validConnector)
	if status != http.StatusConflict {
		t.Errorf("second POST on the follower = %d %s, want the leader's 409", status, body)
	}
	status, body = do(t, http.MethodGet, followerSrv.URL+"/connectors/orders/status", "")
	if status != http.StatusOK || !strings.Contains(body, `"worker_id":"leader"`) {
		t.Errorf("status on the follower = %d %s, want the leader's", status, body)
	}
}

// TestForwardIsOneHop: a forwarded request that reaches a node which no longer leads gets 421
// naming the leader; it is not forwarded again.
func TestForwardIsOneHop(t *testing.T) {
	f := newFakeCluster("n3", false)
	f.leaderHTTP = "elsewhere:1"
	srv := serveFake(t, f)
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/connectors/x", nil)
	req.Header.Set(forward.Header, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var nl forward.Misdirected
	_ = json.NewDecoder(resp.Body).Decode(&nl)
	if resp.StatusCode != http.StatusMisdirectedRequest || nl.LeaderHTTP != "elsewhere:1" || f.calls != 1 {
		t.Errorf("forwarded request on a non-leader = %d %+v after %d calls, want 421 naming the leader", resp.StatusCode, nl, f.calls)
	}
}

// TestForwardWaitsForAnElection: with no leader known the write is tried again until one is,
// and answered 503 if none comes within the forward wait.
func TestForwardWaitsForAnElection(t *testing.T) {
	f := newFakeCluster("n2", false)
	srv := serveFake(t, f)
	go func() {
		time.Sleep(300 * time.Millisecond)
		f.mu.Lock()
		f.leads = true // this node won the election
		f.mu.Unlock()
	}()
	status, body := do(t, http.MethodPost, srv.URL+"/connectors", validConnector)
	if status != http.StatusCreated || f.calls < 2 {
		t.Errorf("POST during an election = %d %s after %d calls, want 201 once elected", status, body, f.calls)
	}

	g := newFakeCluster("n3", false)
	srv = serveFake(t, g)
	start := time.Now()
	status, body = do(t, http.MethodDelete, srv.URL+"/connectors/x", "")
	if status != http.StatusServiceUnavailable || time.Since(start) < time.Second {
		t.Errorf("DELETE with no leader = %d %s after %s, want 503 after the forward wait", status, body, time.Since(start))
	}
}

// testCatalog is the catalog of the kinds this build has, without the services their tasks
// need: enough to validate and show configs.
func testCatalog(t *testing.T) *connector.Catalog {
	catalog, err := connector.NewCatalog(mongosource.New(mongosource.Env{}))
	if err != nil {
		t.Fatal(err)
	}
	return catalog
}
