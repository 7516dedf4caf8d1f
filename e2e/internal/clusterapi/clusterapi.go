// Package clusterapi is the end-to-end tests' client of a mongorelay cluster's REST API: the
// calls and answer shapes the cluster and chaos suites poll and act through, and the poll.
package clusterapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// rest is a small client of the nodes' REST APIs.
var rest = &http.Client{Timeout: 5 * time.Second}

// Call sends a request to addr and decodes a JSON answer into out (when not nil).
func Call(ctx context.Context, method, addr, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rest.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s answer %q: %w", method, path, data, err)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s on %s: HTTP %d: %s", method, path, addr, resp.StatusCode, data)
	}
	return resp.StatusCode, nil
}

// Overview is GET /cluster: the Raft view and the assignments of the node asked.
type Overview struct {
	NodeID     string `json:"node_id"`
	Leader     string `json:"leader"`
	LeaderHTTP string `json:"leader_http"`
	RaftState  string `json:"raft_state"`
	Term       uint64 `json:"term"`
	Index      uint64 `json:"index"` // the Raft index of the cluster state shown
	Epoch      uint64 `json:"epoch"`
	Fenced     bool   `json:"fenced"`
	Nodes      []struct {
		ID    string `json:"id"`
		Voter bool   `json:"voter"`
	} `json:"nodes"`
	Assignments []struct {
		Connector string `json:"connector"`
		Task      string `json:"task"`
		TaskID    int    `json:"task_id"`
		Node      string `json:"node"`
		Epoch     uint64 `json:"epoch"`
	} `json:"assignments"`
}

// Owners maps connector/task to its node.
func (o Overview) Owners() map[string]string {
	out := map[string]string{}
	for _, a := range o.Assignments {
		out[a.Connector+"/"+a.Task] = a.Node
	}
	return out
}

// PerNode counts the tasks of each node.
func (o Overview) PerNode() map[string]int {
	out := map[string]int{}
	for _, a := range o.Assignments {
		out[a.Node]++
	}
	return out
}

// ConnectorStatus is GET /connectors/{name}/status.
type ConnectorStatus struct {
	Name      string `json:"name"`
	Connector struct {
		State string `json:"state"`
	} `json:"connector"`
	Tasks []struct {
		ID       int    `json:"id"`
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace"`
		// Degraded says why a RUNNING task is stalled; "" while it is healthy.
		Degraded string `json:"degraded"`
	} `json:"tasks"`
}

// GetOverview is GET /cluster.
func GetOverview(addr string) (Overview, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ov Overview
	_, err := Call(ctx, http.MethodGet, addr, "/cluster", nil, &ov)
	return ov, err
}

// QuickOverview is GetOverview with a short timeout, for sampling nodes that may be paused.
func QuickOverview(addr string) (Overview, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var ov Overview
	_, err := Call(ctx, http.MethodGet, addr, "/cluster", nil, &ov)
	return ov, err
}

// GetStatus is GET /connectors/{name}/status.
func GetStatus(addr, connector string) (ConnectorStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	var st ConnectorStatus
	_, err := Call(ctx, http.MethodGet, addr, "/connectors/"+connector+"/status", nil, &st)
	return st, err
}

// ConnectorConfig is the config of a connector capturing every collection of db, each in
// shards shards, streaming from when it starts.
func ConnectorConfig(mongoURI, db, prefix string, shards int) map[string]string {
	return map[string]string{
		"connector.class":                           "mongodb",
		"mongodb.connection.string":                 mongoURI,
		"database.include.list":                     db,
		"topic.prefix":                              prefix,
		"shards":                                    fmt.Sprint(shards),
		"snapshot.mode":                             "never",
		"heartbeat.interval.ms":                     "1000",
		"topic.creation.default.partitions":         "2",
		"topic.creation.default.replication.factor": "1",
	}
}

// WaitFor polls cond every 200ms until it holds or timeout passes, and returns how long it
// took; on timeout the test fails with what and cond's last explanation.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	for {
		var ok bool
		ok, why = cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s: %s", what, timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
