package testenv

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
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
type SecureKafka = testservers.SecureKafka

// StartSecureKafka formats and starts a SecureKafka with certificates made for the test, and
// stops it when the test ends. It takes 10 to 30 s on a small machine.
func StartSecureKafka(tb testing.TB) *SecureKafka {
	tb.Helper()
	libs := KafkaLibs(tb)
	dir := tb.TempDir() // removed after the broker stops (cleanups run last first)
	reg := proc.NewRegistry("")
	tb.Cleanup(func() { reg.StopAll(0) })
	k, err := testservers.StartSecureKafka(context.Background(), testservers.SecureKafkaConfig{Libs: libs, Dir: dir}, reg)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// UnsignedJWT is an OAUTHBEARER token for sub, expiring after ttl (negative: expired), that
// the SecureKafka's unsecured validator accepts.
func UnsignedJWT(sub string, ttl time.Duration) string {
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now()
	claims := fmt.Sprintf(`{"sub":%q,"iat":%d,"exp":%d}`, sub, now.Add(-time.Minute).Unix(), now.Add(ttl).Unix())
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(claims)) + "."
}
