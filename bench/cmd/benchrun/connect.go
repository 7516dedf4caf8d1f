package main

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
	"time"

	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
)

// connectWorker is an Apache Kafka Connect worker in distributed mode on loopback, run from
// the jars bench/peers/pom.xml resolves, with the peers' plugins on its plugin.path.
type connectWorker struct {
	p    *proc.Proc
	log  string // the worker's log file
	url  string
	http *http.Client
}

// connectLog4j sends the worker's log to a file and only warnings to the console log.
const connectLog4j = `status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/connect.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.reflections.name = org.reflections
logger.reflections.level = error
`

// startConnect starts a worker named name (its group id and internal topics carry the name,
// so every worker starts with empty config, offset and status topics).
func startConnect(ctx context.Context, cfg *config, reg *proc.Registry, name, kafka string) (*connectWorker, error) {
	dir := filepath.Join(cfg.work, "connect-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := testservers.FreePort()
	if err != nil {
		return nil, err
	}
	props := fmt.Sprintf(`bootstrap.servers=%[1]s
group.id=bench-%[2]s
config.storage.topic=bench-%[2]s-configs
offset.storage.topic=bench-%[2]s-offsets
status.storage.topic=bench-%[2]s-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
listeners=http://127.0.0.1:%[3]d
rest.advertised.host.name=127.0.0.1
rest.advertised.port=%[3]d
plugin.path=%[4]s
offset.flush.interval.ms=10000
`, kafka, name, port, filepath.Join(cfg.peersDir, "plugins"))
	propsFile := filepath.Join(dir, "worker.properties")
	if err := os.WriteFile(propsFile, []byte(props), 0o644); err != nil {
		return nil, err
	}
	log4j := filepath.Join(dir, "log4j2.properties")
	if err := os.WriteFile(log4j, []byte(connectLog4j), 0o644); err != nil {
		return nil, err
	}
	// The heap and JVM flags bin/connect-distributed.sh and kafka-run-class.sh use by default.
	argv := []string{"java", "-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
		"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15",
		"-Djava.awt.headless=true", "-Dkafka.logs.dir=" + dir, "-Dlog4j2.configurationFile=" + log4j,
		"-cp", filepath.Join(cfg.peersDir, "connect-libs") + "/*",
		"org.apache.kafka.connect.cli.ConnectDistributed", propsFile}
	p, err := reg.Start("connect-"+name, filepath.Join(dir, "stdout.log"), proc.Options{}, argv...)
	if err != nil {
		return nil, err
	}
	w := &connectWorker{p: p, log: filepath.Join(dir, "connect.log"), url: fmt.Sprintf("http://127.0.0.1:%d", port), http: &http.Client{Timeout: 30 * time.Second}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var plugins []struct{ Class string }
		if err := w.do(ctx, "GET", "/connector-plugins", nil, &plugins); err == nil && len(plugins) > 0 {
			return w, nil
		}
		if p.Exited() || time.Now().After(deadline) {
			return w, fmt.Errorf("Kafka Connect worker %s did not start (log %s):\n%s", name, filepath.Join(dir, "connect.log"), p.Tail(20))
		}
		select {
		case <-ctx.Done():
			return w, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// connectError is the REST API's error body.
type connectError struct {
	Status  int
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *connectError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

func (w *connectWorker) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		e := &connectError{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return e
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// create creates a connector; stopped creates it in the STOPPED state (KIP-980), so its
// offsets can be set before it runs.
func (w *connectWorker) create(ctx context.Context, name string, config map[string]string, stopped bool) error {
	body := map[string]any{"name": name, "config": config}
	if stopped {
		body["initial_state"] = "STOPPED"
	}
	// Right after start the worker may still be joining its group: retry what it refuses.
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := w.do(ctx, "POST", "/connectors", body, nil)
		ce, ok := err.(*connectError)
		if err == nil || !ok || ce.Status < 409 || ce.Status == 400 || time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("create connector %s: %w", name, err)
			}
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// setOffsets replaces a stopped connector's offsets (KIP-875).
func (w *connectWorker) setOffsets(ctx context.Context, name string, partition, offset map[string]any) error {
	body := map[string]any{"offsets": []any{map[string]any{"partition": partition, "offset": offset}}}
	// The connector's STOPPED state must have reached the worker's status first.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := w.do(ctx, "PATCH", "/connectors/"+name+"/offsets", body, nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("set offsets of connector %s: %w", name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (w *connectWorker) resume(ctx context.Context, name string) error {
	if err := w.do(ctx, "PUT", "/connectors/"+name+"/resume", nil, nil); err != nil {
		return fmt.Errorf("resume connector %s: %w", name, err)
	}
	return nil
}

type connectorStatus struct {
	Connector struct {
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"connector"`
	Tasks []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"tasks"`
}

// failure returns the first FAILED connector or task trace, or "".
func (w *connectWorker) failure(ctx context.Context, name string) string {
	var st connectorStatus
	if err := w.do(ctx, "GET", "/connectors/"+name+"/status", nil, &st); err != nil {
		return ""
	}
	if st.Connector.State == "FAILED" {
		return st.Connector.Trace
	}
	for _, t := range st.Tasks {
		if t.State == "FAILED" {
			return t.Trace
		}
	}
	return ""
}

// remove deletes a connector and waits until its task has stopped: the worker drops the
// connector from its list at once, but stops the task afterwards (a task blocked in a poll
// takes that long), and the next connector would only start after that.
func (w *connectWorker) remove(ctx context.Context, name string) error {
	if err := w.do(ctx, "DELETE", "/connectors/"+name, nil, nil); err != nil {
		return fmt.Errorf("delete connector %s: %w", name, err)
	}
	// The worker logs this once the task's poll has returned and its producer closes.
	closed := "[Producer clientId=connector-producer-" + name + "-0] Closing the Kafka producer"
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(w.log)
		if strings.Contains(string(b), closed) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the task of connector %s had not stopped 60 s after DELETE", name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// logSize is the current length of the worker's log, to look at what it logs after.
func (w *connectWorker) logSize() int64 {
	fi, err := os.Stat(w.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// errorSince returns the first ERROR the worker logged after offset, with the exception
// lines that follow it (stack frames left out), or "".
func (w *connectWorker) errorSince(offset int64) string {
	b, err := os.ReadFile(w.log)
	if err != nil || int64(len(b)) <= offset {
		return ""
	}
	lines := strings.Split(string(b[offset:]), "\n")
	for i, line := range lines {
		if !strings.Contains(line, "] ERROR ") {
			continue
		}
		out := []string{line}
		for _, next := range lines[i+1:] {
			if strings.HasPrefix(next, "[") || len(out) >= 12 {
				break
			}
			if t := strings.TrimSpace(next); t != "" && !strings.HasPrefix(t, "at ") && !strings.HasPrefix(t, "...") {
				out = append(out, next)
			}
		}
		return strings.Join(out, "\n")
	}
	return ""
}
