package testservers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/mongorelay/mongorelay/internal/proc"
)

// SecureKafka is a private single-node Kafka whose only client listener is SASL_SSL
// (SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) and whose controller listener is SSL: no port of it
// speaks plaintext.
type SecureKafka struct {
	Addr  string // the SASL_SSL listener, 127.0.0.1:port
	Certs Certs  // Certs.CA signed the broker's certificate
	// User and Password were created at format time, for both SCRAM mechanisms.
	User, Password string
	Log            string // the broker's output
	Proc           *proc.Proc
}

// SecureKafkaConfig says where a SecureKafka finds its jars and keeps its data, and how its JVM
// and broker are set up beyond the listeners.
type SecureKafkaConfig struct {
	Libs string // the directory of Kafka's jars
	Dir  string // data, certificates and logs; made if missing
	// JVM are the java flags before the class path; nil: a small heap that starts fast, for
	// tests.
	JVM []string
	// InternalPartitions is the partition count of __consumer_offsets and
	// __transaction_state; 0: 3.
	InternalPartitions int
	// Settings are more server.properties lines, appended.
	Settings string
}

// testJVM starts a broker quickly on a small machine: enough for tests, not for measurements.
var testJVM = []string{"-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"}

// StartSecureKafka formats and starts a SecureKafka with certificates made in cfg.Dir, as a
// process of reg, and waits until it authenticates its user. It takes 10 to 30 s on a small
// machine.
func StartSecureKafka(ctx context.Context, cfg SecureKafkaConfig, reg *proc.Registry) (*SecureKafka, error) {
	if cfg.JVM == nil {
		cfg.JVM = testJVM
	}
	if cfg.InternalPartitions == 0 {
		cfg.InternalPartitions = 3
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	certs, err := NewCerts(cfg.Dir)
	if err != nil {
		return nil, err
	}
	k := &SecureKafka{Certs: certs, User: "relay", Password: "relay-secret", Log: filepath.Join(cfg.Dir, "stdout.log")}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cport, err := FreePort()
	if err != nil {
		return nil, err
	}
	k.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	const adminPass = "admin-secret"
	props := fmt.Sprintf(`listeners=SASL_SSL://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=SASL_SSL://127.0.0.1:%[1]d
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
`, port, cport, adminPass, certs.ServerKeyPair, certs.CA) +
		brokerSettings(cport, filepath.Join(cfg.Dir, "data"), cfg.InternalPartitions) + cfg.Settings
	propsFile := filepath.Join(cfg.Dir, "server.properties")
	if err := os.WriteFile(propsFile, []byte(props), 0o600); err != nil {
		return nil, err
	}
	java := javaArgv(cfg.JVM, cfg.Libs, cfg.Dir)
	err = formatStorage(ctx, java, "MkU3OEVBNTcwNTJENDM2Qg", propsFile,
		"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=admin,password=%s]", adminPass),
		"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", k.User, k.Password),
		"--add-scram", fmt.Sprintf("SCRAM-SHA-256=[name=%s,password=%s]", k.User, k.Password))
	if err != nil {
		return nil, fmt.Errorf("the secure Kafka: %w", err)
	}
	if k.Proc, err = reg.Start("kafka-secure", k.Log, proc.Options{}, append(java, "kafka.Kafka", propsFile)...); err != nil {
		return nil, fmt.Errorf("start the secure Kafka: %w", err)
	}
	if err := k.waitReady(ctx); err != nil {
		out, _ := os.ReadFile(k.Log)
		return nil, fmt.Errorf("the secure Kafka on %s did not start: %w\n%s", k.Addr, err, tail(out, 4000))
	}
	return k, nil
}

// waitReady waits until the broker authenticates the user over TLS and answers.
func (k *SecureKafka) waitReady(ctx context.Context) error {
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
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = cl.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-k.Proc.Done():
			return fmt.Errorf("the broker exited: %w", err)
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
