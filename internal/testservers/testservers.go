// Package testservers starts a private Apache Kafka broker (KRaft, one combined node), a second
// one reachable only over SASL_SSL when asked, and MongoDB stand-ins on free ports (loopback
// unless Config.Host says otherwise), for harnesses that must neither disturb nor be disturbed
// by the shared test environment (the benchmark, the chaos test, the multi-host test). It runs the jars
// deploy/local/env.sh installs under .cache/ with that script's broker settings.
package testservers

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/mongorelay/mongorelay/internal/proc"
)

// Config says where the servers find their jars and keep their data, and how big they are.
type Config struct {
	// Root is the repository root: the jars are under Root/.cache, Kafka's log4j2 config under
	// Root/deploy/local.
	Root string
	// Work is the run's own directory: server data, logs and the stand-in jar's copy.
	Work string
	// KafkaHeap is the broker's -Xmx (deploy/local/env.sh uses 1g).
	KafkaHeap string
	// StandinHeap is the stand-in's -Xmx: its documents and oplog live in it.
	StandinHeap string
	// OplogEntries bounds the stand-in's oplog (--oplog-max-entries).
	OplogEntries int
	// Secure starts a second broker too, Servers.Secure: SASL_SSL its only listener, with the
	// first one's JVM and log settings.
	Secure bool
	// More are stand-ins started after the first, each with a heap and an oplog of its own: a
	// stand-in keeps each document twice in its heap, in its collection and its oplog, and
	// one whose oplog must hold every workload of a run has no room for writes that no later
	// reader needs (a sink's target, a latency workload streaming from now).
	More []StandinConfig
	// Host is the address the broker's client listener and the stand-in bind and advertise;
	// "": 127.0.0.1. A harness whose clients sit in other network namespaces gives the address
	// of its bridge.
	Host string
	// Logf prints progress lines; nil prints nothing.
	Logf func(format string, args ...any)
}

// StandinConfig is one of Config.More.
type StandinConfig struct {
	Name         string // its process name and the key of Servers.More
	Heap         string // -Xmx
	OplogEntries int    // --oplog-max-entries
}

// host is the address the servers serve clients on.
func (cfg Config) host() string {
	if cfg.Host == "" {
		return "127.0.0.1"
	}
	return cfg.Host
}

// Servers are the running broker and stand-in. They are private to the run (own ports, own data
// under Config.Work) and start empty.
type Servers struct {
	Kafka      *proc.Proc // the broker's current process (StartKafka replaces it)
	KafkaAddr  string
	Standin    *proc.Proc
	MongoAddr  string // the stand-in's host:port
	MongoURI   string
	StandinJar string             // the copy the run uses
	More       map[string]Standin // Config.More's, by name
	Secure     *SecureKafka       // with Config.Secure, else nil

	// What StartKafka needs to run the broker again as it first ran.
	reg        *proc.Registry
	logf       func(format string, args ...any)
	kafkaArgv  []string
	kafkaDir   string
	kafkaStart int // how often the broker has been started
}

// Standin is a running stand-in of Config.More.
type Standin struct {
	Proc *proc.Proc
	URI  string
}

// FreePort returns a loopback port nothing listens on now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts Kafka, then the stand-in, as processes of reg (reg.StopAll stops them).
func Start(ctx context.Context, cfg Config, reg *proc.Registry) (*Servers, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	s := &Servers{reg: reg, logf: cfg.Logf}
	if err := s.startKafka(ctx, cfg); err != nil {
		return nil, err
	}
	if cfg.Secure {
		cfg.Logf("starting the SASL_SSL-only Kafka")
		var err error
		s.Secure, err = StartSecureKafka(ctx, SecureKafkaConfig{Libs: filepath.Join(cfg.Root, ".cache/kafka/libs"),
			Dir: filepath.Join(cfg.Work, "kafka-secure"), JVM: cfg.brokerJVM(), InternalPartitions: 5, Settings: segmentSetting}, reg)
		if err != nil {
			return nil, err
		}
		cfg.Logf("SASL_SSL Kafka on %s", s.Secure.Addr)
	}
	if err := s.copyStandinJar(cfg); err != nil {
		return nil, err
	}
	var err error
	main := StandinConfig{Name: "mongo-standin", Heap: cfg.StandinHeap, OplogEntries: cfg.OplogEntries}
	if s.Standin, s.MongoAddr, err = s.startStandin(ctx, cfg, reg, main); err != nil {
		return nil, err
	}
	s.MongoURI = standinURI(s.MongoAddr)
	s.More = make(map[string]Standin, len(cfg.More))
	for _, m := range cfg.More {
		p, addr, err := s.startStandin(ctx, cfg, reg, m)
		if err != nil {
			return nil, err
		}
		s.More[m.Name] = Standin{Proc: p, URI: standinURI(addr)}
	}
	return s, nil
}

// brokerJVM are the broker's JVM flags as deploy/local/env.sh runs it, with its log4j config.
func (cfg Config) brokerJVM() []string {
	return []string{"-Xms256m", "-Xmx" + cfg.KafkaHeap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(cfg.Root, "deploy/local/kafka/log4j2.properties")}
}

// segmentSetting is deploy/local's log segment size, which the harness's brokers share.
const segmentSetting = "log.segment.bytes=67108864\n"

// brokerSettings are the server.properties lines every private broker shares after its
// listeners: one combined KRaft node whose controller listens on cport, data under dataDir,
// single-replica internal topics of internalPartitions partitions, no automatic topics.
func brokerSettings(cport int, dataDir string, internalPartitions int) string {
	return fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
log.dirs=%[2]s
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=%[3]d
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=%[3]d
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`, cport, dataDir, internalPartitions)
}

// javaArgv is the java command line of Kafka's classes with jvm flags, the jars in libs and
// its logs in logsDir; the class and its arguments follow.
func javaArgv(jvm []string, libs, logsDir string) []string {
	argv := append([]string{"java"}, jvm...)
	return append(argv, "-Dkafka.logs.dir="+logsDir, "-cp", filepath.Join(libs, "*"))
}

// formatStorage formats a broker's storage for cluster id with the properties file, as a
// standalone controller; extra are more StorageTool flags (--add-scram ...).
func formatStorage(ctx context.Context, java []string, id, propsFile string, extra ...string) error {
	args := append(append(java[1:len(java):len(java)], "kafka.tools.StorageTool", "format", "--standalone", "-t", id, "-c", propsFile), extra...)
	if b, err := exec.CommandContext(ctx, java[0], args...).CombinedOutput(); err != nil {
		return fmt.Errorf("format Kafka storage: %w\n%s", err, b)
	}
	return nil
}

// startKafka runs Apache Kafka as deploy/local/env.sh does (same jars, same broker settings,
// same heap), on free ports, with its data under the work directory.
func (s *Servers) startKafka(ctx context.Context, cfg Config) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	cport, err := FreePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(cfg.Work, "kafka")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	props := fmt.Sprintf(`listeners=PLAINTEXT://%[3]s:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://%[3]s:%[1]d
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
`, port, cport, cfg.host()) + brokerSettings(cport, filepath.Join(dir, "data"), 5) + segmentSetting
	propsFile := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(propsFile, []byte(props), 0o644); err != nil {
		return err
	}
	java := javaArgv(cfg.brokerJVM(), filepath.Join(cfg.Root, ".cache/kafka/libs"), dir)
	out, err := exec.CommandContext(ctx, java[0], append(java[1:], "kafka.tools.StorageTool", "random-uuid")...).Output()
	if err != nil {
		return fmt.Errorf("kafka storage uuid: %w", err)
	}
	if err := formatStorage(ctx, java, strings.TrimSpace(string(out)), propsFile); err != nil {
		return err
	}
	s.KafkaAddr = net.JoinHostPort(cfg.host(), fmt.Sprint(port))
	s.kafkaArgv, s.kafkaDir = append(java, "kafka.Kafka", propsFile), dir
	return s.StartKafka(ctx)
}

// StartKafka starts the broker with the data, ports and settings it had (it formats nothing:
// the topics and their records survive), after StopKafka, and waits until it serves again.
func (s *Servers) StartKafka(ctx context.Context) error {
	// The broker appends to server.log: only what it logs from here on says it started.
	serverLog := filepath.Join(s.kafkaDir, "server.log")
	var from int64
	if fi, err := os.Stat(serverLog); err == nil {
		from = fi.Size()
	}
	s.kafkaStart++
	s.logf("starting Kafka on %s (run %d)", s.KafkaAddr, s.kafkaStart)
	var err error
	s.Kafka, err = s.reg.Start("kafka", filepath.Join(s.kafkaDir, fmt.Sprintf("stdout.%d.log", s.kafkaStart)), proc.Options{}, s.kafkaArgv...)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if logged(serverLog, from, "Kafka Server started") {
			return nil
		}
		if s.Kafka.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("kafka did not start (logs in %s):\n%s", s.kafkaDir, s.Kafka.Tail(30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// StopKafka stops the broker as an operator restarting it would (SIGTERM: a controlled
// shutdown), killing it if it has not exited after grace, and returns once it has exited.
func (s *Servers) StopKafka(grace time.Duration) {
	s.logf("stopping Kafka on %s", s.KafkaAddr)
	s.Kafka.Stop(grace)
}

// logged reports whether the file at path holds substr past its first from bytes.
func logged(path string, from int64, substr string) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < from {
		return false
	}
	return strings.Contains(string(b[from:]), substr)
}

var listeningRE = regexp.MustCompile(`mongo-standin listening on (\S+)`)

// copyStandinJar copies the MongoDB stand-in's jar into the run's directory: a rebuild of the
// shared jar during the run cannot change what is measured.
func (s *Servers) copyStandinJar(cfg Config) error {
	src := filepath.Join(cfg.Root, ".cache/mongo-standin/mongo-standin.jar")
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("the MongoDB stand-in jar is missing (deploy/local/env.sh up builds it): %w", err)
	}
	s.StandinJar = filepath.Join(cfg.Work, "mongo-standin.jar")
	return os.WriteFile(s.StandinJar, b, 0o644)
}

// startStandin runs the MongoDB stand-in sc (its log is Work/<name>.log) from the jar's copy,
// and returns it and its host:port.
func (s *Servers) startStandin(ctx context.Context, cfg Config, reg *proc.Registry, sc StandinConfig) (*proc.Proc, string, error) {
	p, err := reg.Start(sc.Name, filepath.Join(cfg.Work, sc.Name+".log"), proc.Options{Lines: true},
		"java", "-Xms1g", "-Xmx"+sc.Heap, "-XX:+UseG1GC", "-jar", s.StandinJar,
		"--bind", cfg.host(), "--port", "0", "--oplog-max-entries", fmt.Sprint(sc.OplogEntries))
	if err != nil {
		return nil, "", err
	}
	line, err := p.WaitLine(ctx, "mongo-standin listening", 2*time.Minute)
	if err != nil {
		return nil, "", err
	}
	m := listeningRE.FindStringSubmatch(line)
	if m == nil {
		return nil, "", fmt.Errorf("unexpected stand-in banner %q", line)
	}
	cfg.Logf("MongoDB stand-in %s on %s", sc.Name, m[1])
	return p, m[1], nil
}

func standinURI(addr string) string { return "mongodb://" + addr + "/?directConnection=true" }
