package worker

import (
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/api"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config, rest []string)
		wantErr []string
	}{
		{
			name: "defaults and alias",
			args: []string{"--kafka", "a:1, b:2", "conn.json"},
			check: func(t *testing.T, c Config, rest []string) {
				if strings.Join(c.KafkaBrokers, ";") != "a:1;b:2" || c.OffsetsTopic != "" ||
					c.SchemasTopic != "" || c.RegistryListen != "127.0.0.1:8081" ||
					c.LogLevel != slog.LevelInfo || c.ShutdownTimeout != 30*time.Second || c.ReplicationFactor != -1 ||
					c.Compression != kgo.NoCompression() || c.TransactionTimeout != time.Minute {
					t.Errorf("unexpected config %+v", c)
				}
				if len(rest) != 1 || rest[0] != "conn.json" {
					t.Errorf("rest = %v, want [conn.json]", rest)
				}
			},
		},
		{
			name: "flag beats environment beats default",
			args: []string{"--offsets-topic", "from-flag"},
			env: map[string]string{"MONGORELAY_KAFKA_BOOTSTRAP_SERVERS": "k:9", "MONGORELAY_OFFSETS_TOPIC": "from-env",
				"MONGORELAY_SCHEMAS_TOPIC": "schemas-env"},
			check: func(t *testing.T, c Config, _ []string) {
				if c.KafkaBrokers[0] != "k:9" || c.OffsetsTopic != "from-flag" || c.SchemasTopic != "schemas-env" {
					t.Errorf("unexpected config %+v", c)
				}
			},
		},
		{
			name: "every bad value named at once",
			args: []string{"--log-level", "loud", "--log-format", "xml", "--shutdown-timeout", "soon",
				"--producer-compression-type", "brotli", "--transaction-timeout-ms", "999"},
			wantErr: []string{`"kafka.bootstrap.servers": is required`, `"log.level": "loud"`, `"log.format": "xml"`,
				`"shutdown.timeout": "soon"`, `"producer.compression.type": "brotli" is not one of none, gzip, snappy, lz4, zstd`,
				`"transaction.timeout.ms": "999" is out of range: give a number of milliseconds from 1000 to 900000`},
		},
		{
			name: "transaction timeout from the environment",
			env:  map[string]string{"MONGORELAY_KAFKA_BOOTSTRAP_SERVERS": "k:9", "MONGORELAY_TRANSACTION_TIMEOUT_MS": "15000"},
			check: func(t *testing.T, c Config, _ []string) {
				if c.TransactionTimeout != 15*time.Second {
					t.Errorf("transaction timeout %v, want 15s", c.TransactionTimeout)
				}
			},
		},
		{
			name: "Kafka security from flags and the environment",
			args: []string{"--kafka", "k:9093", "--kafka-security-protocol", "sasl_ssl", "--kafka-sasl-mechanism", "SCRAM-SHA-512",
				"--kafka-sasl-username", "relay", "--kafka-ssl-endpoint-identification-algorithm", ""},
			env: map[string]string{"MONGORELAY_KAFKA_SASL_PASSWORD": "pw-s3cret"},
			check: func(t *testing.T, c Config, _ []string) {
				s := c.KafkaSecurity
				if s.Protocol != "SASL_SSL" || s.Mechanism != "SCRAM-SHA-512" || s.Username != "relay" || s.Password != "pw-s3cret" ||
					s.EndpointAlgorithm != "" {
					t.Errorf("unexpected security %+v", s)
				}
				if opts, err := c.KafkaOpts(); err != nil || len(opts) != 3 {
					t.Errorf("KafkaOpts = %d options, %v; want brokers, TLS and SASL", len(opts), err)
				}
			},
		},
		{
			name: "every Kafka security problem at once, no secret shown",
			args: []string{"--kafka", "k:9093", "--kafka-security-protocol", "SASL_SSL", "--kafka-ssl-truststore-password", "pw-s3cret"},
			wantErr: []string{`worker config "kafka.sasl.mechanism": is required with kafka.security.protocol=SASL_SSL`,
				`worker config "kafka.ssl.truststore.password": does nothing without kafka.ssl.truststore.location`},
		},
		{
			name: "compression from the environment",
			env:  map[string]string{"MONGORELAY_KAFKA_BOOTSTRAP_SERVERS": "k:9", "MONGORELAY_PRODUCER_COMPRESSION_TYPE": "zstd"},
			check: func(t *testing.T, c Config, _ []string) {
				if c.Compression != kgo.ZstdCompression() {
					t.Errorf("compression %+v, want zstd", c.Compression)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c, rest, err := ParseFlags(fs, tt.args, func(k string) string { return tt.env[k] })
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "pw-s3cret") {
					t.Errorf("error %q shows a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c, rest)
		})
	}
}

// TestTheLoggersLevelCanChangeWhileItRuns: the REST API changes the node's level through its
// handler (api.LevelHandler), and every logger derived from it follows.
func TestTheLoggersLevelCanChangeWhileItRuns(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var out strings.Builder
		log := Config{LogLevel: slog.LevelInfo, LogFormat: format}.Logger(&out)
		derived := log.With("node", "n1").WithGroup("g")
		lh, ok := derived.Handler().(api.LevelHandler)
		if !ok {
			t.Fatalf("%s: the derived logger's handler %T has no LevelVar", format, derived.Handler())
		}
		derived.Debug("hidden")
		lh.LevelVar().Set(slog.LevelDebug)
		derived.Debug("shown")
		if strings.Contains(out.String(), "hidden") || !strings.Contains(out.String(), "shown") {
			t.Errorf("%s: logged %q, want only the line after the level changed", format, out.String())
		}
	}
}
