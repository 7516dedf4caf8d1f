package check

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var binary = flag.String("mongorelay", "../../bin/mongorelay", "the built mongorelay binary the systemd unit's ExecStart is pointed at (make build)")

const root = "../.."

// composeEnv stands for the .env file compose/certs.sh writes.
var composeEnv = map[string]string{"MONGORELAY_HTTP_AUTH_TOKEN": "0123456789abcdef0123456789abcdef"}

// shipped is one deployment file and the check that validates it.
type shipped struct {
	path  string
	check func(t *testing.T, path string, content []byte) error
}

var files = []shipped{
	{"Dockerfile", func(_ *testing.T, _ string, content []byte) error { return Dockerfile(content) }},
	{"deploy/compose/compose.yaml", func(t *testing.T, path string, content []byte) error {
		return Compose(t.Context(), path, content, composeEnv)
	}},
	{"deploy/systemd/mongorelay.service", func(t *testing.T, path string, content []byte) error {
		bin, err := filepath.Abs(*binary)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("the unit's ExecStart needs the built binary: %v (make build)", err)
		}
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Fatalf("%v: deploy/local/env.sh up installs it", err)
		}
		return Systemd(t.Context(), filepath.Base(path), content, bin)
	}},
	{"deploy/kubernetes", func(t *testing.T, _ string, _ []byte) error { return kubernetes(t, nil) }},
}

// kubernetes checks every manifest of deploy/kubernetes, the one named in edit replaced by its content.
func kubernetes(t *testing.T, edit map[string][]byte) error {
	paths, err := filepath.Glob(filepath.Join(root, "deploy/kubernetes/*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	var m Manifests
	for _, p := range paths {
		content, ok := edit[filepath.Base(p)]
		if !ok {
			content = read(t, p)
		}
		if err := m.AddFile(filepath.Base(p), content); err != nil {
			return err
		}
	}
	return m.Check()
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return content
}

func TestTheShippedDeploymentFilesPass(t *testing.T) {
	for _, f := range files {
		t.Run(f.path, func(t *testing.T) {
			path := filepath.Join(root, f.path)
			var content []byte
			if !strings.HasPrefix(f.path, "deploy/kubernetes") {
				content = read(t, path)
			}
			if err := f.check(t, path, content); err != nil {
				t.Errorf("%s fails its check:\n%v", f.path, err)
			}
		})
	}
}

// TestBrokenCopiesFail: each check refuses a copy of its file with one field misspelled or a
// value of the wrong type, naming the problem, so a passing check means something.
func TestBrokenCopiesFail(t *testing.T) {
	tests := []struct {
		name, file, old, new, want string
	}{
		{"Dockerfile: misspelled instruction", "Dockerfile", "\nUSER 65532:65532", "\nUSR 65532:65532", "unknown instruction: USR"},
		{"Dockerfile: duration of the wrong type", "Dockerfile", "--interval=10s", "--interval=often", "often"},
		{"Dockerfile: root user", "Dockerfile", "\nUSER 65532:65532", "\nUSER root", "non-root USER"},
		{"Dockerfile: shell-form HEALTHCHECK", "Dockerfile", `CMD ["/usr/local/bin/mongorelay", "healthcheck"]`, "CMD /usr/local/bin/mongorelay healthcheck", "exec form"},
		{"compose: misspelled field", "deploy/compose/compose.yaml", "stop_grace_period:", "stop_grace_perod:", "stop_grace_perod"},
		{"compose: count of the wrong type", "deploy/compose/compose.yaml", "retries: 20", "retries: twenty", "retries"},
		{"compose: a worker without TLS", "deploy/compose/compose.yaml", "MONGORELAY_HTTP_TLS_CERT: /etc/mongorelay/tls/mongorelay2.pem", "MONGORELAY_HTTP_TLS_KEYS: x", "MONGORELAY_HTTP_TLS_CERT is not set"},
		{"systemd: misspelled key", "deploy/systemd/mongorelay.service", "NoNewPrivileges=yes", "NoNewPrivilegs=yes", "Unknown key 'NoNewPrivilegs'"},
		{"systemd: time of the wrong type", "deploy/systemd/mongorelay.service", "RestartSec=5", "RestartSec=soon", "Failed to parse"},
		{"systemd: stop timeout below shutdown.timeout", "deploy/systemd/mongorelay.service", "TimeoutStopSec=60", "TimeoutStopSec=20", "above shutdown.timeout"},
		{"kubernetes: misspelled field", "deploy/kubernetes/statefulset.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSecond: 60", `unknown field "terminationGracePeriodSecond"`},
		{"kubernetes: replicas of the wrong type", "deploy/kubernetes/statefulset.yaml", "replicas: 3", `replicas: "3"`, "replicas"},
		{"kubernetes: grace period below shutdown.timeout", "deploy/kubernetes/statefulset.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 10", "above shutdown.timeout"},
		{"kubernetes: shutdown.timeout above the grace period", "deploy/kubernetes/config.yaml", "shutdown.timeout: 30s", "shutdown.timeout: 90s", "above shutdown.timeout (1m30s)"},
		{"kubernetes: readiness probe elsewhere", "deploy/kubernetes/statefulset.yaml", "path: /readyz", "path: /ready", "GET /readyz"},
		{"kubernetes: misspelled ServiceMonitor field", "deploy/kubernetes/servicemonitor.yaml", "interval: 30s", "intervall: 30s", `unknown field "intervall"`},
		{"kubernetes: PDB budget of the wrong type", "deploy/kubernetes/pdb.yaml", "maxUnavailable: 1", "maxUnavailable: [1]", "maxUnavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(root, tt.file)
			content := string(read(t, path))
			if strings.Count(content, tt.old) < 1 {
				t.Fatalf("%s no longer holds %q: update the test", tt.file, tt.old)
			}
			broken := []byte(strings.Replace(content, tt.old, tt.new, 1))
			var err error
			if dir, base := filepath.Split(tt.file); dir == "deploy/kubernetes/" {
				err = kubernetes(t, map[string][]byte{base: broken})
			} else {
				for _, f := range files {
					if f.path == tt.file {
						err = f.check(t, path, broken)
					}
				}
			}
			if err == nil {
				t.Fatalf("the broken copy passes its check")
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("the check's error does not name the problem (want %q):\n%v", tt.want, err)
			}
		})
	}
}
