package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

func problemKeys(errs []error) []string {
	var keys []string
	for _, err := range errs {
		var ke *KeyError
		if !errors.As(err, &ke) {
			keys = append(keys, "not a KeyError: "+err.Error())
			continue
		}
		keys = append(keys, ke.Key)
	}
	slices.Sort(keys)
	return keys
}

func TestCheckReportsEveryProblemNamingItsKey(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent.pem")
	tests := []struct {
		name string
		s    Security
		want []string
	}{
		{"plaintext by default", Security{EndpointAlgorithm: "https", TruststoreType: "PKCS12"}, nil},
		{"SASL_SSL without a mechanism", Security{Protocol: "SASL_SSL", EndpointAlgorithm: "https"}, []string{KeyMechanism}},
		{"SCRAM without credentials", Security{Protocol: "SASL_SSL", Mechanism: "SCRAM-SHA-512", EndpointAlgorithm: "https"},
			[]string{KeyPassword, KeyUsername}},
		{"an unknown protocol", Security{Protocol: "TLS"}, []string{KeyProtocol}},
		{"an unknown mechanism", Security{Protocol: "SASL_PLAINTEXT", Mechanism: "GSSAPI", EndpointAlgorithm: "https"}, []string{KeyMechanism}},
		{"SASL keys without SASL", Security{Protocol: "SSL", EndpointAlgorithm: "https", Username: "u", Password: "pw-s3cret"},
			[]string{KeyPassword, KeyUsername}},
		{"TLS keys without TLS", Security{Protocol: "SASL_PLAINTEXT", Mechanism: "PLAIN", Username: "u", Password: "pw-s3cret",
			CA: "ca.pem", EndpointAlgorithm: ""}, []string{KeyCA, KeyEndpointAlgorithm}},
		{"a CA file that cannot be read, and a bad algorithm", Security{Protocol: "SSL", CA: missing, EndpointAlgorithm: "http"},
			[]string{KeyCA, KeyEndpointAlgorithm}},
		{"a certificate without its key", Security{Protocol: "SSL", EndpointAlgorithm: "https", Certificate: "c.pem"}, []string{KeyKey}},
		{"both a CA and a truststore", Security{Protocol: "SSL", EndpointAlgorithm: "https", CA: "a", Truststore: "b"}, []string{KeyCA}},
		{"a JKS truststore", Security{Protocol: "SSL", EndpointAlgorithm: "https", Truststore: "store.jks", TruststoreType: "JKS"},
			[]string{KeyTruststore}},
		{"a truststore password alone", Security{Protocol: "SSL", EndpointAlgorithm: "https", TruststorePassword: "x"},
			[]string{KeyTruststorePassword}},
		{"OAUTHBEARER without a token", Security{Protocol: "SASL_SSL", Mechanism: "OAUTHBEARER", EndpointAlgorithm: "https"},
			[]string{KeyOAuthToken}},
		{"OAUTHBEARER with a password", Security{Protocol: "SASL_SSL", Mechanism: "OAUTHBEARER", EndpointAlgorithm: "https",
			OAuthToken: "t", Password: "pw-s3cret"}, []string{KeyPassword}},
		{"JAAS and a username", Security{Protocol: "SASL_SSL", Mechanism: "PLAIN", EndpointAlgorithm: "https", Username: "u",
			JAAS: `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`}, []string{KeyJAAS}},
		{"a JAAS module that does not suit the mechanism", Security{Protocol: "SASL_SSL", Mechanism: "SCRAM-SHA-256", EndpointAlgorithm: "https",
			JAAS: `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`}, []string{KeyJAAS}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.s.Check()
			if got := problemKeys(errs); !slices.Equal(got, tt.want) {
				t.Fatalf("problems on %v, want %v: %v", got, tt.want, errors.Join(errs...))
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), tt.s.Password) && tt.s.Password != "" {
					t.Errorf("a problem shows the password: %v", err)
				}
			}
		})
	}
}

func TestJAASGivesTheCredentials(t *testing.T) {
	user, pass, err := parseJAAS(`org.apache.kafka.common.security.scram.ScramLoginModule required username="alice"  password="s3 cr=t";`, "SCRAM-SHA-512")
	if err != nil || user != "alice" || pass != "s3 cr=t" {
		t.Fatalf("parseJAAS = %q, %q, %v", user, pass, err)
	}
	for _, bad := range []string{
		`org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p"`,
		`org.apache.kafka.common.security.scram.ScramLoginModule optional username="alice";`,
		`org.apache.kafka.common.security.scram.ScramLoginModule required username=alice;`,
	} {
		if _, _, err := parseJAAS(bad, "SCRAM-SHA-256"); err == nil {
			t.Errorf("parseJAAS(%s) accepted it", bad)
		}
	}
}

// PKCS12 stores, as Kafka Connect users have them, give the same trust and certificate as
// the PEM files.
func TestPKCS12StoresAreRead(t *testing.T) {
	certs := testenv.NewCerts(t)
	dir := t.TempDir()
	ca := readCert(t, certs.CA)
	trust, err := pkcs12.Passwordless.EncodeTrustStore([]*x509.Certificate{ca}, "")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := readCert(t, certs.ServerCert)
	keys, err := pkcs12.Modern.Encode(pair.PrivateKey, leaf, []*x509.Certificate{ca}, "store-pass")
	if err != nil {
		t.Fatal(err)
	}
	s := Security{Protocol: "SSL", EndpointAlgorithm: "https",
		Truststore: filepath.Join(dir, "trust.p12"), TruststoreType: "PKCS12",
		Keystore: filepath.Join(dir, "keys.p12"), KeystorePassword: "store-pass", KeystoreType: "PKCS12"}
	write(t, s.Truststore, trust)
	write(t, s.Keystore, keys)
	cfg, _, problems := s.resolve()
	if len(problems) > 0 {
		t.Fatal(errors.Join(problems...))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: "localhost"}); err != nil {
		t.Errorf("the truststore's CA does not verify the certificate it signed: %v", err)
	}
	if len(cfg.Certificates) != 1 || len(cfg.Certificates[0].Certificate) != 2 {
		t.Fatalf("keystore gave %d certificates", len(cfg.Certificates))
	}
	s.KeystorePassword = "wrong"
	if keys := problemKeys(s.Check()); !slices.Equal(keys, []string{KeyKeystore}) {
		t.Errorf("a wrong keystore password: problems on %v", keys)
	}
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func write(t *testing.T, file string, data []byte) {
	t.Helper()
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
