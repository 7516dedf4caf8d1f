package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// KafkaLibsVar holds the directory of the Kafka jars deploy/local/env.sh installed, for
// tests that start a private broker.
const KafkaLibsVar = "MONGORELAY_TEST_KAFKA_LIBS"

// KafkaLibs returns the directory of the Kafka jars: KafkaLibsVar, else the module's
// .cache/kafka/libs when present (an env.sh written before the variable existed).
func KafkaLibs(tb testing.TB) string {
	tb.Helper()
	if v := os.Getenv(KafkaLibsVar); v != "" {
		return v
	}
	if dir, err := os.Getwd(); err == nil {
		for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				libs := filepath.Join(dir, ".cache", "kafka", "libs")
				if jars, _ := filepath.Glob(filepath.Join(libs, "kafka-clients-*.jar")); len(jars) > 0 {
					return libs
				}
				break
			}
		}
	}
	return require(tb, KafkaLibsVar)
}

// SecureKafka is a private single-node Kafka whose only client listener is SASL_SSL
// (SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) and whose controller listener is SSL: no port of it
// speaks plaintext.
type SecureKafka struct {
	Addr  string // the SASL_SSL listener, 127.0.0.1:port
	Certs Certs  // Certs.CA signed the broker's certificate
	// User and Password were created at format time, for both SCRAM mechanisms.
	User, Password string
	Log            string // the broker's output, shown when a test fails
}

// StartSecureKafka formats and starts a SecureKafka with certificates made for the test, and
// stops it when the test ends. It takes 10 to 30 s on a small machine.
func StartSecureKafka(tb testing.TB) *SecureKafka {
	tb.Helper()
	libs := KafkaLibs(tb)
	dir := tb.TempDir()
	k := &SecureKafka{Certs: NewCerts(tb), User: "relay", Password: "relay-secret", Log: filepath.Join(dir, "stdout.log")}
	port, cport := freePort(tb), freePort(tb)
	k.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	const adminPass = "admin-secret"
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
listeners=SASL_SSL://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=SASL_SSL://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="%[3]s";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=%[4]s
ssl.truststore.type=PEM
ssl.truststore.location=%[5]s
log.dirs=%[6]s
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`, port, cport, adminPass, k.Certs.ServerKeyPair, k.Certs.CA, filepath.Join(dir, "data"))
	propsFile := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(propsFile, []byte(props), 0o600); err != nil {
		tb.Fatal(err)
	}
	java := func(args ...string) *exec.Cmd {
		return exec.Command("java", append([]string{"-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
			"-Djava.awt.headless=true", "-Dkafka.logs.dir=" + dir, "-cp", filepath.Join(libs, "*")}, args...)...)
	}
	format := java("kafka.tools.StorageTool", "format", "--standalone", "-t", "MkU3OEVBNTcwNTJENDM2Qg", "-c", propsFile,
		"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=admin,password=%s]", adminPass),
		"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", k.User, k.Password),
		"--add-scram", fmt.Sprintf("SCRAM-SHA-256=[name=%s,password=%s]", k.User, k.Password))
	if out, err := format.CombinedOutput(); err != nil {
		tb.Fatalf("format the secure Kafka's storage: %v\n%s", err, out)
	}
	logFile, err := os.Create(k.Log)
	if err != nil {
		tb.Fatal(err)
	}
	srv := java("kafka.Kafka", propsFile)
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		tb.Fatalf("start the secure Kafka: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = srv.Wait(); logFile.Close(); close(exited) }()
	tb.Cleanup(func() {
		_ = srv.Process.Kill()
		<-exited
	})
	if err := k.waitReady(exited); err != nil {
		out, _ := os.ReadFile(k.Log)
		tb.Fatalf("the secure Kafka on %s did not start: %v\n%s", k.Addr, err, tail(out, 4000))
	}
	return k
}

// waitReady waits until the broker authenticates the test user over TLS and answers.
func (k *SecureKafka) waitReady(exited <-chan struct{}) error {
	pem, err := os.ReadFile(k.Certs.CA)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr), kgo.DialTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: k.User, Pass: k.Password}.AsSha512Mechanism()))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = cl.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the broker exited: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// UnsignedJWT is an OAUTHBEARER token for sub, expiring after ttl (negative: expired), that
// the SecureKafka's unsecured validator accepts.
func UnsignedJWT(sub string, ttl time.Duration) string {
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now()
	claims := fmt.Sprintf(`{"sub":%q,"iat":%d,"exp":%d}`, sub, now.Add(-time.Minute).Unix(), now.Add(ttl).Unix())
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(claims)) + "."
}
