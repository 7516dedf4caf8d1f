package worker

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/coordinator"
)

func parseWorker(t *testing.T, args []string, env map[string]string, files map[string]string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return ParseWorkerFlags(fs, args, func(k string) string { return env[k] }, func(name string) ([]byte, error) {
		if data, ok := files[name]; ok {
			return []byte(data), nil
		}
		return nil, os.ErrNotExist
	})
}

func TestParseWorkerFlagsDefaults(t *testing.T) {
	c, err := parseWorker(t, []string{"--kafka", "k:9092"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "mongorelay-data" || c.ClusterID != "mongorelay" || c.HTTPListen != "127.0.0.1:8083" || c.RaftListen != ":8300" ||
		c.RegistryListen != "127.0.0.1:8081" || c.RaftVoters != 3 || c.Bootstrap || c.HeartbeatInterval != 500*time.Millisecond ||
		c.SessionTimeout != 5*time.Second || c.Lease != 4*time.Second || c.RebalanceDelay != 0 || c.NodeID != "" ||
		c.RaftSnapshotThreshold != 8192 || c.RaftSnapshotInterval != 2*time.Minute {
		t.Errorf("unexpected defaults %+v", c)
	}
}

// TestParseWorkerFlagsPrecedence: flags beat MONGORELAY_* variables, which beat the YAML
// file, which beats the defaults.
func TestParseWorkerFlagsPrecedence(t *testing.T) {
	file := `
node.id: from-file
cluster.id: file-cluster
kafka:
  bootstrap:
    servers: [f1:9092, f2:9092]
worker:
  lease: 3s
  session.timeout: 5s
http.listen: ":9000"
http.auth.insecure: true
bootstrap: true
peers: "a=10.0.0.1:8300=10.0.0.1:8083,b=10.0.0.2:8300"
`
	c, err := parseWorker(t,
		[]string{"--config", "node.yaml", "--node-id", "from-flag"},
		map[string]string{"MONGORELAY_CLUSTER_ID": "env-cluster", "MONGORELAY_HTTP_LISTEN": ":9100"},
		map[string]string{"node.yaml": file})
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "from-flag" || c.ClusterID != "env-cluster" || c.HTTPListen != ":9100" || !c.HTTPAuthInsecure {
		t.Errorf("flag > env > file broken: %+v", c)
	}
	if strings.Join(c.KafkaBrokers, ",") != "f1:9092,f2:9092" || c.Lease != 3*time.Second || c.SessionTimeout != 5*time.Second || !c.Bootstrap {
		t.Errorf("file values (nested keys, lists, booleans) not applied: %+v", c)
	}
	want := []coordinator.Peer{{ID: "a", RaftAddr: "10.0.0.1:8300", HTTPAddr: "10.0.0.1:8083"}, {ID: "b", RaftAddr: "10.0.0.2:8300"}}
	if len(c.Peers) != 2 || c.Peers[0] != want[0] || c.Peers[1] != want[1] {
		t.Errorf("peers = %+v, want %+v", c.Peers, want)
	}

	// The config file may come from the environment too; a bare --bootstrap is true.
	c, err = parseWorker(t, []string{"--bootstrap"}, map[string]string{"MONGORELAY_CONFIG": "n.yaml"},
		map[string]string{"n.yaml": "kafka.bootstrap.servers: k:1\n"})
	if err != nil || !c.Bootstrap || c.KafkaBrokers[0] != "k:1" {
		t.Errorf("MONGORELAY_CONFIG and --bootstrap: %+v, %v", c, err)
	}
}

func TestParseWorkerFlagsErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		files map[string]string
		want  []string
	}{
		{"lease not below session", []string{"--kafka", "k:1", "--worker-lease", "5s"}, nil,
			[]string{`"worker.lease": 5s must be shorter than worker.session.timeout 5s`}},
		{"rebalance delay negative", []string{"--kafka", "k:1", "--worker-rebalance-delay", "-1s"}, nil,
			[]string{`"worker.rebalance.delay": "-1s" is not a duration from 0s to 10m0s`}},
		{"rebalance delay past the dead node removal", []string{"--kafka", "k:1", "--worker-rebalance-delay", "11m"}, nil,
			[]string{`"worker.rebalance.delay": "11m" is not a duration from 0s to 10m0s`}},
		{"bootstrap and join", []string{"--kafka", "k:1", "--bootstrap", "--join", "a:8083"}, nil,
			[]string{`"join": a node either bootstraps`}},
		{"every bad value named", []string{"--peers", "x", "--raft-voters", "0", "--http-listen", "nope", "--worker-heartbeat-interval", "-1s",
			"--raft-snapshot-threshold", "0", "--raft-snapshot-interval", "soon"}, nil,
			[]string{`"kafka.bootstrap.servers": is required`, `"peers": "x" is not id=raft-host:port`, `"raft.voters"`, `"http.listen"`, `"worker.heartbeat.interval"`,
				`"raft.snapshot.threshold": "0" is not a number of log entries`, `"raft.snapshot.interval"`}},
		{"unknown file key", []string{"--config", "c.yaml"}, map[string]string{"c.yaml": "kafka.bootstrap.servers: k:1\nworker:\n  leese: 3s\n"},
			[]string{`unknown key "worker.leese"`}},
		{"missing file", []string{"--config", "nope.yaml"}, nil, []string{"worker config file"}},
		{"positional arguments", []string{"--kafka", "k:1", "conn.json"}, nil, []string{"takes flags only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseWorker(t, tt.args, nil, tt.files)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestStandaloneFlagsHaveNoClusterKeys: the standalone command keeps its own flag set.
func TestStandaloneFlagsHaveNoClusterKeys(t *testing.T) {
	fs := flag.NewFlagSet("standalone", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, _, err := ParseFlags(fs, []string{"--kafka", "k:1", "--node-id", "x"}, func(string) string { return "" }); err == nil {
		t.Error("standalone accepted --node-id")
	}
	fs = flag.NewFlagSet("standalone", flag.ContinueOnError)
	c, _, err := ParseFlags(fs, []string{"--kafka", "k:1"}, func(string) string { return "" })
	if err != nil || c.RegistryListen != "127.0.0.1:8081" {
		t.Errorf("standalone registry.listen = %q (%v), want 127.0.0.1:8081", c.RegistryListen, err)
	}
}

func TestResolveNodeID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id, err := resolveNodeID(dir, "")
	if err != nil || !strings.HasPrefix(id, "node-") {
		t.Fatalf("new id %q, %v", id, err)
	}
	if again, err := resolveNodeID(dir, ""); err != nil || again != id {
		t.Errorf("restart without --node-id: %q, %v; want %q kept", again, err, id)
	}
	if again, err := resolveNodeID(dir, id); err != nil || again != id {
		t.Errorf("restart with the same --node-id: %q, %v", again, err)
	}
	if _, err := resolveNodeID(dir, "other"); err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Errorf("another id on the same data dir: %v, want a refusal", err)
	}
	given, err := resolveNodeID(filepath.Join(t.TempDir(), "d2"), "n7")
	if err != nil || given != "n7" {
		t.Errorf("given id: %q, %v", given, err)
	}
}

// TestClusterSecretFromEveryPlace: cluster.secret comes, like every key, from a flag, its
// variable or the YAML file, and a refused one is not shown in the error.
func TestClusterSecretFromEveryPlace(t *testing.T) {
	const secret = "fedcba9876543210fedcba"
	for name, tt := range map[string]struct {
		args  []string
		env   map[string]string
		files map[string]string
	}{
		"flag":     {args: []string{"--cluster-secret", secret}},
		"variable": {env: map[string]string{"MONGORELAY_CLUSTER_SECRET": secret}},
		"YAML":     {args: []string{"--config", "c.yaml"}, files: map[string]string{"c.yaml": "cluster:\n  secret: " + secret + "\n"}},
	} {
		c, err := parseWorker(t, append([]string{"--kafka", "k:1"}, tt.args...), tt.env, tt.files)
		if err != nil || c.ClusterSecret != secret {
			t.Errorf("%s: cluster secret %q, %v", name, c.ClusterSecret, err)
		}
	}
	_, err := parseWorker(t, []string{"--kafka", "k:1"}, map[string]string{"MONGORELAY_CLUSTER_SECRET": "short-secret"}, nil)
	if err == nil || strings.Contains(err.Error(), "short-secret") {
		t.Errorf("a short secret: %v, want a refusal that does not show it", err)
	}
}

// TestCheckClusterID: a data dir records the cluster it belongs to; a node of another
// cluster.id is refused it, naming both ids.
func TestCheckClusterID(t *testing.T) {
	dir := t.TempDir()
	if err := checkClusterID(dir, "blue"); err != nil {
		t.Fatalf("a new data dir: %v", err)
	}
	if err := checkClusterID(dir, "blue"); err != nil {
		t.Errorf("a restart of the same cluster: %v", err)
	}
	err := checkClusterID(dir, "green")
	if err == nil || !strings.Contains(err.Error(), `cluster "blue", not "green"`) || !strings.Contains(err.Error(), `"cluster.id"`) {
		t.Errorf("a node of another cluster: %v, want a refusal naming both", err)
	}
}

func TestAdvertiseFor(t *testing.T) {
	if got, err := advertiseFor("10.1.2.3:8083"); err != nil || got != "10.1.2.3:8083" {
		t.Errorf("specific address: %q, %v", got, err)
	}
	got, err := advertiseFor("[::]:8083")
	if err != nil || !strings.HasSuffix(got, ":8083") || strings.HasPrefix(got, "[::]") {
		t.Errorf("unspecified address: %q, %v", got, err)
	}
	if _, err := advertiseFor("nope"); err == nil {
		t.Error("no error for a bad address")
	}
}

func TestParseWorkerFlagsKafkaSecurityFromYAML(t *testing.T) {
	file := `
kafka:
  bootstrap.servers: k:9093
  security.protocol: SASL_SSL
  sasl:
    mechanism: SCRAM-SHA-256
    jaas.config: 'org.apache.kafka.common.security.scram.ScramLoginModule required username="relay" password="pw-s3cret";'
  ssl.endpoint.identification.algorithm: ""
`
	c, err := parseWorker(t, []string{"--config", "n.yaml"}, nil, map[string]string{"n.yaml": file})
	if err != nil {
		t.Fatal(err)
	}
	s := c.KafkaSecurity
	if s.Protocol != "SASL_SSL" || s.Mechanism != "SCRAM-SHA-256" || !strings.Contains(s.JAAS, `username="relay"`) || s.EndpointAlgorithm != "" {
		t.Errorf("nested kafka.* security keys not applied: %+v", s)
	}
}

// TestListenerDefaults: without http.auth.* the REST API and the registry bind loopback; a
// cluster node with users defaults to every interface (DESIGN.md 7), a standalone process
// never does, and an address given is kept.
func TestListenerDefaults(t *testing.T) {
	const token = "0123456789abcdef0123"
	users := map[string]string{"users.yaml": "http.auth.basic.file: /etc/mongorelay/users\n"}
	tests := []struct {
		name             string
		standalone       bool
		args             []string
		env              map[string]string
		files            map[string]string
		wantREST, wantSR string
	}{
		{name: "cluster without auth", wantREST: "127.0.0.1:8083", wantSR: "127.0.0.1:8081"},
		{name: "cluster with the admin token", env: map[string]string{"MONGORELAY_HTTP_AUTH_TOKEN": token},
			wantREST: ":8083", wantSR: ":8081"},
		{name: "cluster with a users file from the YAML file", args: []string{"--config", "users.yaml"}, files: users,
			wantREST: ":8083", wantSR: ":8081"},
		{name: "cluster with users and an address given", args: []string{"--http-auth-token", token, "--http-listen", "10.0.0.5:9000"},
			env: map[string]string{"MONGORELAY_REGISTRY_LISTEN": "127.0.0.1:9001"}, wantREST: "10.0.0.5:9000", wantSR: "127.0.0.1:9001"},
		{name: "standalone with the admin token", standalone: true, args: []string{"--http-auth-token", token},
			wantREST: "127.0.0.1:8083", wantSR: "127.0.0.1:8081"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--kafka", "k:1"}, tt.args...)
			var c Config
			var err error
			if tt.standalone {
				c, _, err = ParseFlags(flag.NewFlagSet("standalone", flag.ContinueOnError), args, func(k string) string { return tt.env[k] })
			} else {
				c, err = parseWorker(t, args, tt.env, tt.files)
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HTTPListen != tt.wantREST || c.RegistryListen != tt.wantSR {
				t.Errorf("http.listen %q, registry.listen %q; want %q, %q", c.HTTPListen, c.RegistryListen, tt.wantREST, tt.wantSR)
			}
		})
	}
}

// TestListenerChecks: a listener other hosts reach is refused without http.auth.* unless
// http.auth.insecure=true, with a message naming the key and each fix; the TLS and auth keys
// are checked together.
func TestListenerChecks(t *testing.T) {
	const token = "0123456789abcdef0123"
	tests := []struct {
		name       string
		standalone bool
		args       []string
		want       []string // "" in want: no error
	}{
		{name: "every interface without auth", args: []string{"--http-listen", ":8083"},
			want: []string{`"http.listen": :8083 takes requests from other hosts and no REST authentication is configured`,
				"set http.auth.token or http.auth.basic.file", "listen on loopback (127.0.0.1:8083)", "http.auth.insecure=true"}},
		{name: "a host's address for the registry", args: []string{"--registry-listen", "10.0.0.5:8081"},
			want: []string{`"registry.listen": 10.0.0.5:8081 takes requests from other hosts`, "(127.0.0.1:8081)"}},
		{name: "standalone on every interface", standalone: true, args: []string{"--http-listen", "0.0.0.0:8083"},
			want: []string{`"http.listen": 0.0.0.0:8083 takes requests from other hosts`}},
		{name: "insecure on purpose", args: []string{"--http-listen", ":8083", "--registry-listen", "[::]:8081", "--http-auth-insecure"}},
		{name: "with the admin token", args: []string{"--http-listen", ":8083", "--http-auth-token", token}},
		{name: "with a users file", args: []string{"--registry-listen", ":8081", "--http-auth-basic-file", "users"}},
		{name: "localhost and IPv6 loopback", args: []string{"--http-listen", "localhost:8083", "--registry-listen", "[::1]:8081"}},
		{name: "a certificate without its key", args: []string{"--http-tls-cert", "c.pem"},
			want: []string{`"http.tls.cert": give both http.tls.cert and http.tls.key, or neither`}},
		{name: "registry reads closed without users", args: []string{"--registry-auth-reads"},
			want: []string{`"registry.auth.reads": the registry's reads can need a user only once`}},
		{name: "a short token", args: []string{"--http-auth-token", "secret"},
			want: []string{`"http.auth.token": is shorter than 16 characters`}},
		{name: "a token with a space", args: []string{"--http-auth-token", "0123456789 abcdef0123"},
			want: []string{`"http.auth.token": holds spaces`}},
		{name: "a short cluster secret", args: []string{"--cluster-secret", "secret"},
			want: []string{`"cluster.secret": is shorter than 16 characters`}},
		{name: "a cluster secret", args: []string{"--cluster-secret", token}},
		{name: "a cluster certificate without its CA", args: []string{"--cluster-tls-cert", "c.pem", "--cluster-tls-key", "k.pem"},
			want: []string{`"cluster.tls.cert": give cluster.tls.cert, cluster.tls.key and cluster.tls.ca together, or none`}},
		{name: "mutual TLS between the nodes", args: []string{"--cluster-tls-cert", "c.pem", "--cluster-tls-key", "k.pem", "--cluster-tls-ca", "ca.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--kafka", "k:1"}, tt.args...)
			var err error
			if tt.standalone {
				fs := flag.NewFlagSet("standalone", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				_, _, err = ParseFlags(fs, args, func(string) string { return "" })
			} else {
				_, err = parseWorker(t, args, nil, nil)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
