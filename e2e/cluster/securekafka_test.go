//go:build e2e

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestSecuredKafka runs everything through a private Kafka whose only listener is SASL_SSL
// (SCRAM-SHA-512, a CA made by the test): a 3-node cluster and a standalone process stream,
// register schemas and commit offsets, and mongorelay consume reads their records with the
// same keys. A wrong password, a wrong mechanism and an untrusted CA each stop the process
// within 10 s with one error naming the key to fix.
func TestSecuredKafka(t *testing.T) {
	k := testenv.StartSecureKafka(t)
	mongoURI := testenv.Mongo(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-secure-kafka")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The password goes by the environment, as a deployment would give it; the rest by flags.
	t.Setenv("MONGORELAY_KAFKA_SASL_PASSWORD", k.Password)
	secure := []string{"--kafka", k.Addr, "--kafka-security-protocol", "SASL_SSL", "--kafka-sasl-mechanism", "SCRAM-SHA-512",
		"--kafka-sasl-username", k.User, "--kafka-ssl-ca-location", k.Certs.CA}
	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })

	t.Run("a 3-node cluster", func(t *testing.T) {
		db, prefix := "e2es_"+run+"_c", "e2es"+run
		var nodes []*node
		for i := 1; i <= 3; i++ {
			nodes = append(nodes, newNode(t, fmt.Sprintf("n%d", i), logDir))
		}
		var peers []string
		for _, n := range nodes {
			peers = append(peers, n.id+"="+n.raft+"="+n.http)
		}
		for i, n := range nodes {
			n.args = nodeArgs(n, "e2es-"+run, k.Addr, append(secure[2:], "--peers", strings.Join(peers, ","))...)
			if i == 0 {
				n.args = append(n.args, "--bootstrap")
			}
			t.Cleanup(n.cleanup)
			n.start(t)
		}
		clusterapi.WaitFor(t, 60*time.Second, "a leader", func() (bool, string) {
			ov, err := clusterapi.GetOverview(nodes[0].http)
			return err == nil && ov.Leader != "", fmt.Sprint(ov.Leader, err)
		})
		config := clusterapi.ConnectorConfig(mongoURI, db, prefix, 1)
		streamAndConsume(t, mc, db, prefix, secure, nodes[0].registry, func() {
			body := map[string]any{"name": "secure-cluster", "config": config}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if status, err := clusterapi.Call(ctx, http.MethodPost, nodes[0].http, "/connectors", body, nil); err != nil || status != http.StatusCreated {
				t.Fatalf("create the connector: %d %v", status, err)
			}
		})
		offsetsTopic := "e2es-" + run + "-offsets"
		if n := countRecords(t, k, offsetsTopic); n == 0 {
			t.Errorf("no offset committed to %s", offsetsTopic)
		}
	})

	t.Run("a standalone process", func(t *testing.T) {
		db, prefix := "e2es_"+run+"_s", "e2ess"+run
		ports := freePorts(t, 2)
		file := filepath.Join(t.TempDir(), "conn.json")
		conn, _ := json.Marshal(map[string]any{"name": "secure-standalone", "config": clusterapi.ConnectorConfig(mongoURI, db, prefix, 1)})
		if err := os.WriteFile(file, conn, 0o600); err != nil {
			t.Fatal(err)
		}
		schemas, offsets := "e2es-"+run+"-schemas", "e2es-"+run+"-standalone-offsets"
		args := append([]string{"standalone", "--http-listen", ports[0], "--registry-listen", ports[1],
			"--schemas-topic", schemas, "--offsets-topic", offsets}, secure...)
		p := startProcess(t, filepath.Join(logDir, "standalone.log"), append(args, file)...)
		streamAndConsume(t, mc, db, prefix, secure, ports[1], func() {})
		if err := p.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := waitExit(p, 30*time.Second); err != nil {
			t.Errorf("standalone did not stop cleanly: %v", err)
		}
		if n := countRecords(t, k, schemas); n == 0 {
			t.Errorf("no schema registered in %s", schemas)
		}
		if n := countRecords(t, k, offsets); n == 0 {
			t.Errorf("no offset committed to %s", offsets)
		}
	})

	t.Run("refused connections stop the process naming the key", func(t *testing.T) {
		other := testenv.NewCerts(t).CA
		file := filepath.Join(t.TempDir(), "conn.json")
		conn, _ := json.Marshal(map[string]any{"name": "refused", "config": clusterapi.ConnectorConfig(mongoURI, "e2es_"+run+"_r", "e2esr"+run, 1)})
		if err := os.WriteFile(file, conn, 0o600); err != nil {
			t.Fatal(err)
		}
		with := func(flag, value string) []string {
			out := append([]string(nil), secure...)
			for i := range out {
				if out[i] == flag {
					out[i+1] = value
				}
			}
			return out
		}
		for _, tt := range []struct {
			name, key string
			args      []string
			env       string // MONGORELAY_KAFKA_SASL_PASSWORD
		}{
			{"wrong password", kafkaconn.KeyPassword, secure, "not-the-password"},
			{"wrong mechanism", kafkaconn.KeyMechanism, with("--kafka-sasl-mechanism", "PLAIN"), k.Password},
			{"untrusted CA", kafkaconn.KeyCA, with("--kafka-ssl-ca-location", other), k.Password},
		} {
			for _, cmd := range []string{"standalone", "worker", "consume"} {
				args := append([]string{cmd}, tt.args...)
				ports := freePorts(t, 3)
				switch cmd {
				case "standalone":
					args = append(args, "--http-listen", ports[0], "--registry-listen", ports[1], file)
				case "worker":
					args = append(args, "--http-listen", ports[0], "--registry-listen", ports[1], "--raft-listen", ports[2],
						"--data-dir", t.TempDir(), "--node-id", "refused", "--bootstrap")
				default:
					args = append(args, "--idle", "30s", "some-topic")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				c := exec.CommandContext(ctx, mongorelayBin, args...)
				c.Env = append(os.Environ(), "MONGORELAY_KAFKA_SASL_PASSWORD="+tt.env)
				start := time.Now()
				out, err := c.CombinedOutput()
				took := time.Since(start)
				cancel()
				if err == nil {
					t.Errorf("%s, %s: exited 0:\n%s", tt.name, cmd, out)
					continue
				}
				if !bytes.Contains(out, []byte(`"`+tt.key+`"`)) {
					t.Errorf("%s, %s: the error does not name %s:\n%s", tt.name, cmd, tt.key, out)
				}
				if bytes.Contains(out, []byte(k.Password)) || bytes.Contains(out, []byte("not-the-password")) {
					t.Errorf("%s, %s: the output shows a password:\n%s", tt.name, cmd, out)
				}
				if took > 10*time.Second {
					t.Errorf("%s, %s: took %v to exit, want at most 10 s", tt.name, cmd, took)
				}
				t.Logf("%s, %s: exited after %v: %s", tt.name, cmd, took.Round(time.Millisecond), lastLine(out))
			}
		}
	})
}

// streamAndConsume creates what captures db (create), waits until a first write reaches
// Kafka, then writes more and reads them all with mongorelay consume through registry.
func streamAndConsume(t *testing.T, mc *mongo.Client, db, prefix string, secure []string, registry string, create func()) {
	t.Helper()
	coll := mc.Database(db).Collection("orders")
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })
	ctx := context.Background()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}
	create()
	topic := prefix + "." + db + ".orders"
	// The connector streams from when its task starts: write until a record shows.
	const n = 20
	var out []byte
	clusterapi.WaitFor(t, 60*time.Second, "records in "+topic, func() (bool, string) {
		docs := make([]any, n)
		for i := range docs {
			docs[i] = bson.D{{Key: "qty", Value: i}}
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return false, err.Error()
		}
		var err error
		out, err = exec.Command(mongorelayBin, append(append([]string{"consume"}, secure...),
			"--registry", "http://"+registry, "--max", fmt.Sprint(n), "--idle", "3s", topic)...).CombinedOutput()
		lines := bytes.Count(out, []byte("\n"))
		return err == nil && lines >= n, fmt.Sprintf("%d lines, %v: %s", lines, err, lastLine(out))
	})
	var rec struct {
		Value map[string]any `json:"value"`
	}
	if err := json.Unmarshal(firstLine(out), &rec); err != nil || rec.Value == nil {
		t.Fatalf("consume printed %q: %v", firstLine(out), err)
	}
}

// countRecords counts the records of topic on the secured Kafka.
func countRecords(t *testing.T, k *testenv.SecureKafka, topic string) int {
	t.Helper()
	opts, err := kafkaconn.Opts([]string{k.Addr}, kafkaconn.Security{Protocol: "SASL_SSL", Mechanism: "SCRAM-SHA-256",
		Username: k.User, Password: k.Password, CA: k.Certs.CA, EndpointAlgorithm: "https"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	for ctx.Err() == nil && n == 0 {
		n += cl.PollFetches(ctx).NumRecords()
	}
	return n
}

// startProcess runs the mongorelay binary with args, its output in logPath, killed when the
// test ends.
func startProcess(t *testing.T, logPath string, args ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(mongorelayBin, args...)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = c.Wait(); logf.Close(); close(done) }()
	exited[c] = done
	t.Cleanup(func() { _ = c.Process.Kill(); <-done })
	return c
}

// exited holds when each process of startProcess has exited.
var exited = map[*exec.Cmd]chan struct{}{}

func waitExit(c *exec.Cmd, timeout time.Duration) error {
	select {
	case <-exited[c]:
		if !c.ProcessState.Success() {
			return fmt.Errorf("exit status %v", c.ProcessState)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("still running after %v", timeout)
	}
}

func firstLine(b []byte) []byte {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return line
}

func lastLine(b []byte) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			last = s
		}
	}
	return last
}
