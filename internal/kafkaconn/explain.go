package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RefusedError is a connection Kafka refused, or a broker the client refused to trust: no
// retry can fix it, only a setting, which Key names.
type RefusedError struct {
	Key  string
	Hint string // what to check
	Err  error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s (check %q%s): %v", "Kafka connection refused", e.Key, e.Hint, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Explain returns err as a *RefusedError naming the setting to fix when it is a refused
// authentication or an untrusted broker certificate, and err itself otherwise (a broker that
// closes the first read is annotated, not classified: it may just be restarting).
func Explain(err error) error {
	if err == nil {
		return nil
	}
	if _, done := errors.AsType[*RefusedError](err); done {
		return err
	}
	refused := func(key, hint string) error { return &RefusedError{Key: key, Hint: hint, Err: err} }
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed) && strings.Contains(err.Error(), `{"status":`):
		// OAUTHBEARER's refusals carry RFC 7628's JSON status, such as invalid_token.
		return refused(KeyOAuthToken, fmt.Sprintf(" or %q: the broker refused the token (expired, or not for this cluster)", KeyOAuthTokenFile))
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return refused(KeyPassword, fmt.Sprintf(" and %q, or %q: the broker refused these credentials with %q", KeyUsername, KeyJAAS, KeyMechanism))
	case errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return refused(KeyMechanism, ": the broker does not enable this mechanism; use one of its sasl.enabled.mechanisms")
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return refused(KeyEndpointAlgorithm, ": the broker's certificate does not name the host dialed; fix the certificate, or set it empty to skip the host check")
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return refused(KeyCA, fmt.Sprintf(" or %q: the broker's certificate is not signed by a trusted CA", KeyTruststore))
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return refused(KeyCA, fmt.Sprintf(" or %q: the broker's certificate could not be verified", KeyTruststore))
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return refused(KeyCertificate, fmt.Sprintf(" or %q, and %q: the broker refused the TLS handshake", KeyKeystore, KeyProtocol))
	}
	if _, ok := errors.AsType[*kgo.ErrFirstReadEOF](err); ok {
		return fmt.Errorf("%w (if this persists, check %q: the broker may require TLS or SASL)", err, KeyProtocol)
	}
	return err
}

// IsRefused reports whether err, or an error it wraps, is a refused connection (Explain).
func IsRefused(err error) bool {
	_, ok := errors.AsType[*RefusedError](Explain(err))
	return ok
}

// DeniedError is a request Kafka refused because the process's principal lacks an ACL: no
// retry can fix it, only a grant, which Grant names.
type DeniedError struct {
	Grant string
	Err   error
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("Kafka denied the request: grant the principal of mongorelay's Kafka user %s: %v", e.Grant, e.Err)
}

func (e *DeniedError) Unwrap() error { return e.Err }

// Denied returns err as a *DeniedError naming the ACL to grant when Kafka refused it for want
// of one, and nil otherwise.
func Denied(err error) *DeniedError {
	if d, ok := errors.AsType[*DeniedError](err); ok {
		return d
	}
	var grant string
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		grant = "Write, Describe and Create on the connector's topics (its dead letter topic included) and on the offsets topic"
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		grant = "Write and Describe on the transactional ids prefixed with the cluster.id"
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		grant = "IdempotentWrite, and Create to create topics, on the cluster"
	default:
		return nil
	}
	return &DeniedError{Grant: grant, Err: err}
}
