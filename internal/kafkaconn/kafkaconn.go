// Package kafkaconn builds how every Kafka client of the process connects: seed brokers, TLS
// and SASL from Kafka's own security settings (DESIGN.md 14), and explains a refused
// connection by the setting to fix.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The keys of Security, Kafka's client names under "kafka." (worker config, flags
// --kafka-security-protocol ..., variables MONGORELAY_KAFKA_SECURITY_PROTOCOL ...).
const (
	KeyProtocol           = "kafka.security.protocol"
	KeyMechanism          = "kafka.sasl.mechanism"
	KeyUsername           = "kafka.sasl.username"
	KeyPassword           = "kafka.sasl.password"
	KeyJAAS               = "kafka.sasl.jaas.config"
	KeyOAuthToken         = "kafka.sasl.oauthbearer.token"
	KeyOAuthTokenFile     = "kafka.sasl.oauthbearer.token.file"
	KeyCA                 = "kafka.ssl.ca.location"
	KeyCertificate        = "kafka.ssl.certificate.location"
	KeyKey                = "kafka.ssl.key.location"
	KeyEndpointAlgorithm  = "kafka.ssl.endpoint.identification.algorithm"
	KeyTruststore         = "kafka.ssl.truststore.location"
	KeyTruststorePassword = "kafka.ssl.truststore.password"
	KeyTruststoreType     = "kafka.ssl.truststore.type"
	KeyKeystore           = "kafka.ssl.keystore.location"
	KeyKeystorePassword   = "kafka.ssl.keystore.password"
	KeyKeystoreType       = "kafka.ssl.keystore.type"
)

// Security is how clients protect and authenticate their connections to Kafka: Kafka's
// security.protocol, sasl.* and ssl.* client settings. Security{EndpointAlgorithm: "https"}
// is Kafka's default, PLAINTEXT.
type Security struct {
	// Protocol is PLAINTEXT (""), SSL, SASL_PLAINTEXT or SASL_SSL.
	Protocol string
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (SASL_* only).
	Mechanism string
	// Username and Password authenticate PLAIN and SCRAM; JAAS (Java's sasl.jaas.config
	// line) may give them instead.
	Username, Password, JAAS string
	// OAuthToken is OAUTHBEARER's token; OAuthTokenFile names a file holding it, read again
	// at every connection so that a rotated token is picked up.
	OAuthToken, OAuthTokenFile string
	// CA, Certificate and Key are PEM files: the CAs to trust (empty: the system's), and
	// the client certificate and its key for brokers that ask for one.
	CA, Certificate, Key string
	// EndpointAlgorithm is "https" (the broker's certificate must name the host dialed) or
	// "" (any host, still signed by a trusted CA).
	EndpointAlgorithm string
	// Truststore and Keystore are Java's PKCS12 (or PEM) stores, for users coming from
	// Kafka Connect; JKS is refused.
	Truststore, TruststorePassword, TruststoreType string
	Keystore, KeystorePassword, KeystoreType       string
}

// KeyError is a problem with one key of Security.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("%q: %v", e.Key, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

func problem(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

func (s Security) usesTLS() bool  { return s.Protocol == "SSL" || s.Protocol == "SASL_SSL" }
func (s Security) usesSASL() bool { return strings.HasPrefix(s.Protocol, "SASL_") }

// Check reports every problem of s at once, each naming its key and the fix: unknown values,
// missing and conflicting keys, keys that would do nothing under the protocol, and files that
// cannot be read.
func (s Security) Check() []error {
	_, _, problems := s.resolve()
	return problems
}

// Opts are the options of a client of brokers with s: every Kafka client of the process
// starts from them.
func Opts(brokers []string, s Security) ([]kgo.Opt, error) {
	tlsCfg, mech, problems := s.resolve()
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// resolve builds s's TLS config (nil without TLS) and SASL mechanism (nil without SASL).
func (s Security) resolve() (*tls.Config, sasl.Mechanism, []error) {
	var problems []error
	switch s.Protocol {
	case "", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
	default:
		return nil, nil, []error{problem(KeyProtocol, "%q is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL", s.Protocol)}
	}
	mech, p := s.mechanism()
	problems = append(problems, p...)
	tlsCfg, p := s.tlsConfig()
	problems = append(problems, p...)
	return tlsCfg, mech, problems
}

// given reports each key of kv (key, value pairs) that has a value, with msg: keys the
// settings would ignore, refused so that no key accepted does nothing.
func given(msg string, kv ...string) []error {
	var problems []error
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			problems = append(problems, problem(kv[i], "%s", msg))
		}
	}
	return problems
}

// unusedUnder is given's message for keys the protocol does not use.
func unusedUnder(protocol, want string) string {
	return fmt.Sprintf("does nothing with %s=%s: set %s to %s, or remove it", KeyProtocol, orPlaintext(protocol), KeyProtocol, want)
}

func orPlaintext(p string) string {
	if p == "" {
		return "PLAINTEXT"
	}
	return p
}

func (s Security) mechanism() (sasl.Mechanism, []error) {
	if !s.usesSASL() {
		return nil, given(unusedUnder(s.Protocol, "SASL_SSL (or SASL_PLAINTEXT)"), KeyMechanism, s.Mechanism,
			KeyUsername, s.Username, KeyPassword, s.Password, KeyJAAS, s.JAAS,
			KeyOAuthToken, s.OAuthToken, KeyOAuthTokenFile, s.OAuthTokenFile)
	}
	switch s.Mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		return s.passwordMechanism()
	case "OAUTHBEARER":
		return s.oauthMechanism()
	case "":
		return nil, []error{problem(KeyMechanism, "is required with %s=%s: give PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (the one the broker enables)",
			KeyProtocol, s.Protocol)}
	}
	return nil, []error{problem(KeyMechanism, "%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER", s.Mechanism)}
}

func (s Security) passwordMechanism() (sasl.Mechanism, []error) {
	problems := given(fmt.Sprintf("does nothing with %s=%s: remove it", KeyMechanism, s.Mechanism),
		KeyOAuthToken, s.OAuthToken, KeyOAuthTokenFile, s.OAuthTokenFile)
	user, pass := s.Username, s.Password
	if s.JAAS != "" {
		if user != "" || pass != "" {
			return nil, append(problems, problem(KeyJAAS, "and %s/%s both give the credentials: keep one", KeyUsername, KeyPassword))
		}
		var err error
		if user, pass, err = parseJAAS(s.JAAS, s.Mechanism); err != nil {
			return nil, append(problems, &KeyError{Key: KeyJAAS, Err: err})
		}
	}
	if user == "" {
		problems = append(problems, problem(KeyUsername, "is required with %s=%s (or give %s)", KeyMechanism, s.Mechanism, KeyJAAS))
	}
	if pass == "" {
		problems = append(problems, problem(KeyPassword, "is required with %s=%s (or give %s)", KeyMechanism, s.Mechanism, KeyJAAS))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	switch s.Mechanism {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	}
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
}

func (s Security) oauthMechanism() (sasl.Mechanism, []error) {
	problems := given(fmt.Sprintf("does nothing with %s=OAUTHBEARER: give the token in %s or %s", KeyMechanism, KeyOAuthToken, KeyOAuthTokenFile),
		KeyUsername, s.Username, KeyPassword, s.Password, KeyJAAS, s.JAAS)
	switch {
	case s.OAuthToken != "" && s.OAuthTokenFile != "":
		problems = append(problems, problem(KeyOAuthToken, "and %s are both given: keep one", KeyOAuthTokenFile))
	case s.OAuthToken == "" && s.OAuthTokenFile == "":
		problems = append(problems, problem(KeyOAuthToken, "is required with %s=OAUTHBEARER (or %s, a file holding the token)", KeyMechanism, KeyOAuthTokenFile))
	case s.OAuthTokenFile != "":
		if _, err := readToken(s.OAuthTokenFile); err != nil {
			problems = append(problems, &KeyError{Key: KeyOAuthTokenFile, Err: err})
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	if s.OAuthToken != "" {
		return oauth.Auth{Token: s.OAuthToken}.AsMechanism(), nil
	}
	file := s.OAuthTokenFile
	return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		token, err := readToken(file)
		if err != nil {
			return oauth.Auth{}, &KeyError{Key: KeyOAuthTokenFile, Err: err}
		}
		return oauth.Auth{Token: token}, nil
	}), nil
}

func readToken(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("%s holds no token", file)
	}
	return token, nil
}

// parseJAAS reads the credentials of a Java sasl.jaas.config line, such as
// org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";
// whose login module must suit mechanism.
func parseJAAS(line, mechanism string) (user, pass string, err error) {
	want := "org.apache.kafka.common.security.plain.PlainLoginModule"
	if mechanism != "PLAIN" {
		want = "org.apache.kafka.common.security.scram.ScramLoginModule"
	}
	rest := strings.TrimSpace(line)
	module, rest, _ := strings.Cut(rest, " ")
	if module != want {
		return "", "", fmt.Errorf("login module %q does not suit %s=%s: use %s", module, KeyMechanism, mechanism, want)
	}
	rest = strings.TrimSpace(rest)
	flag, rest, _ := strings.Cut(rest, " ")
	if flag != "required" {
		return "", "", fmt.Errorf("want %q after the login module, got %q", "required", flag)
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasSuffix(rest, ";") {
		return "", "", errors.New(`does not end with ";"`)
	}
	rest = strings.TrimSpace(strings.TrimSuffix(rest, ";"))
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=")
		name = strings.TrimSpace(name)
		after = strings.TrimSpace(after)
		if !ok || !strings.HasPrefix(after, `"`) {
			return "", "", fmt.Errorf(`option %q is not name="value"`, name)
		}
		end := strings.Index(after[1:], `"`)
		if end < 0 {
			return "", "", fmt.Errorf("option %q has no closing quote", name)
		}
		value := after[1 : 1+end]
		rest = strings.TrimSpace(after[2+end:])
		switch name {
		case "username":
			user = value
		case "password":
			pass = value
		}
	}
	return user, pass, nil
}
