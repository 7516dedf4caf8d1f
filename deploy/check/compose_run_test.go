package check

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestTheComposeWorkersFormASecureCluster runs the compose file's three workers as real
// processes with the environment compose.yaml gives them and the certificates and token
// certs.sh makes, on the test environment's Kafka, each service name standing for localhost
// on ports of its own: they form one cluster over mutual TLS, each passes the image's
// HEALTHCHECK command, and the REST API takes the token and refuses a call without it.
func TestTheComposeWorkersFormASecureCluster(t *testing.T) {
	kafka := os.Getenv("MONGORELAY_TEST_KAFKA")
	if kafka == "" {
		msg := "MONGORELAY_TEST_KAFKA is not set: run make env-up and . .cache/env/env.sh, or make test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	bin, err := filepath.Abs(*binary)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := read(t, filepath.Join(root, "deploy/compose/certs.sh"))
	if err := os.WriteFile(filepath.Join(dir, "certs.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", filepath.Join(dir, "certs.sh")).CombinedOutput(); err != nil {
		t.Fatalf("certs.sh: %v\n%s", err, out)
	}
	dotenv, err := os.ReadFile(filepath.Join(dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(strings.TrimPrefix(string(dotenv), "MONGORELAY_HTTP_AUTH_TOKEN="))

	path := filepath.Join(root, "deploy/compose/compose.yaml")
	project, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: read(t, path)}},
		Environment: map[string]string{"MONGORELAY_HTTP_AUTH_TOKEN": token},
	}, func(o *loader.Options) { o.SetProjectName("mongorelay", true) })
	if err != nil {
		t.Fatal(err)
	}
	var workers []string
	for name, svc := range project.Services {
		if strings.HasPrefix(svc.Image, "mongorelay:") {
			workers = append(workers, name)
		}
	}
	slices.Sort(workers)
	if len(workers) != 3 {
		t.Fatalf("workers %v, want 3", workers)
	}

	// Each service name becomes localhost with ports of its own; the certificates name
	// localhost too, so TLS is checked as in the containers.
	type ports struct{ http, raft, registry string }
	addrs := map[string]ports{}
	var replace []string
	free := freePorts(t, 3*len(workers))
	for i, w := range workers {
		p := ports{free[3*i], free[3*i+1], free[3*i+2]}
		addrs[w] = p
		replace = append(replace, w+":8083", "localhost:"+p.http, w+":8300", "localhost:"+p.raft)
	}
	replace = append(replace, "kafka:9092", kafka, "/etc/mongorelay/tls", filepath.Join(dir, "certs"))
	rewrite := strings.NewReplacer(replace...)
	cluster := fmt.Sprintf("compose-check-%d", time.Now().UnixNano()%1_000_000_000)

	envOf := map[string][]string{}
	for _, w := range workers {
		env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "MONGORELAY_") })
		for key, value := range project.Services[w].Environment {
			if value != nil {
				env = append(env, key+"="+rewrite.Replace(*value))
			}
		}
		p := addrs[w]
		env = append(env, "MONGORELAY_HTTP_LISTEN=127.0.0.1:"+p.http, "MONGORELAY_RAFT_LISTEN=127.0.0.1:"+p.raft,
			"MONGORELAY_REGISTRY_LISTEN=127.0.0.1:"+p.registry, "MONGORELAY_DATA_DIR="+filepath.Join(dir, w),
			"MONGORELAY_CLUSTER_ID="+cluster)
		envOf[w] = env
		logf, err := os.Create(filepath.Join(dir, w+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "worker")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			logf.Close()
			if t.Failed() {
				log, _ := os.ReadFile(logf.Name())
				t.Logf("%s's log:\n%s", w, log)
			}
		})
	}

	// The image's HEALTHCHECK: `mongorelay healthcheck` with the container's environment.
	for _, w := range workers {
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			cmd := exec.CommandContext(ctx, bin, "healthcheck")
			cmd.Env = envOf[w]
			out, err := cmd.CombinedOutput()
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's healthcheck: %v: %s", w, err, out)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	client := httpsClient(t, filepath.Join(dir, "certs", "ca.pem"))
	get := func(w, path, auth string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://localhost:"+addrs[w].http+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, body := get(workers[1], "/connectors", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /connectors without the token: %d %s, want 401", code, body)
	}
	var overview struct {
		Leader string `json:"leader"`
		Nodes  []struct {
			ID       string `json:"id"`
			RaftAddr string `json:"raft_addr"`
			Voter    bool   `json:"voter"`
		} `json:"nodes"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(workers[1], "/cluster", token)
		if code == http.StatusOK && json.Unmarshal(body, &overview) == nil && len(overview.Nodes) == 3 && overview.Leader != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /cluster: %d %s, want 3 nodes and a leader", code, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, n := range overview.Nodes {
		if !n.Voter || !strings.HasPrefix(n.RaftAddr, "localhost:") {
			t.Errorf("node %+v: want a voter recorded under its name", n)
		}
	}
}

// freePorts returns n distinct loopback ports free at the time of the call: the listeners
// stay open until all are chosen, so that none is handed out twice.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, port, _ := net.SplitHostPort(l.Addr().String())
		ports = append(ports, port)
	}
	return ports
}
