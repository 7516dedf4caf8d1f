package kafkaconn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestAgainstASecureKafka runs the checks that need a real broker with one private
// SASL_SSL Kafka.
func TestAgainstASecureKafka(t *testing.T) {
	k := testenv.StartSecureKafka(t)
	t.Run("refused connections name the key within 10 s", func(t *testing.T) { testRefused(t, k) })
	t.Run("OAUTHBEARER tokens", func(t *testing.T) { testOAuthBearer(t, k) })
}

// A refused connection fails within 10 s, once, naming the key to fix; the right settings
// connect, with or without the host name check.
func testRefused(t *testing.T, k *testenv.SecureKafka) {
	good := Security{Protocol: "SASL_SSL", Mechanism: "SCRAM-SHA-512", Username: k.User, Password: k.Password,
		CA: k.Certs.CA, EndpointAlgorithm: "https"}
	jaas := good
	jaas.Username, jaas.Password = "", ""
	jaas.JAAS = `org.apache.kafka.common.security.scram.ScramLoginModule required username="` + k.User + `" password="` + k.Password + `";`
	noHostCheck := good
	noHostCheck.EndpointAlgorithm = ""
	for name, s := range map[string]Security{"PEM CA": good, "JAAS line": jaas, "no host check": noHostCheck} {
		if err := ping(t, s, k.Addr); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	wrongPassword := good
	wrongPassword.Password = "not-the-password"
	wrongMechanism := good
	wrongMechanism.Mechanism = "PLAIN"
	untrusted := good
	untrusted.CA = testenv.NewCerts(t).CA
	for _, tt := range []struct {
		name string
		s    Security
		key  string
	}{
		{"wrong password", wrongPassword, KeyPassword},
		{"wrong mechanism", wrongMechanism, KeyMechanism},
		{"untrusted CA", untrusted, KeyCA},
	} {
		start := time.Now()
		err := ping(t, tt.s, k.Addr)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("%s: connected", tt.name)
		}
		if !IsRefused(err) || !strings.Contains(Explain(err).Error(), `"`+tt.key+`"`) {
			t.Errorf("%s: error %q does not name %s", tt.name, Explain(err), tt.key)
		}
		if strings.Contains(Explain(err).Error(), k.Password) {
			t.Errorf("%s: the error shows the password", tt.name)
		}
		if took > 10*time.Second {
			t.Errorf("%s: took %v, want at most 10 s", tt.name, took)
		}
		t.Logf("%s after %v: %v", tt.name, took.Round(time.Millisecond), Explain(err))
	}
}

func ping(t *testing.T, s Security, addr string) error {
	t.Helper()
	opts, err := Opts([]string{addr}, s)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// OAUTHBEARER tokens, given or read from a file, reach a broker that validates them (the
// test broker's unsecured validator: unsigned JWTs, as Kafka's own tests use).
func testOAuthBearer(t *testing.T, k *testenv.SecureKafka) {
	token := testenv.UnsignedJWT(k.User, time.Hour)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Security{Protocol: "SASL_SSL", Mechanism: "OAUTHBEARER", CA: k.Certs.CA, EndpointAlgorithm: "https"}
	withToken, withFile := base, base
	withToken.OAuthToken = token
	withFile.OAuthTokenFile = file
	for name, s := range map[string]Security{"token": withToken, "token file": withFile} {
		if err := ping(t, s, k.Addr); err != nil {
			t.Errorf("%s: %v", name, Explain(err))
		}
	}
	expired := base
	expired.OAuthToken = testenv.UnsignedJWT(k.User, -time.Hour)
	if err := ping(t, expired, k.Addr); !IsRefused(err) || !strings.Contains(Explain(err).Error(), `"`+KeyOAuthToken+`"`) {
		t.Errorf("an expired token: %v, want a refused connection naming %s", Explain(err), KeyOAuthToken)
	}
}
