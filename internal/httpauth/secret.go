package httpauth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

// The headers of a call from one node to another (DESIGN.md 14).
const (
	// SecretHeader carries cluster.secret on every node-to-node call: the /internal/ routes
	// and the writes a follower forwards to the leader.
	SecretHeader = "X-Mongorelay-Cluster-Secret"
	// RoleHeader and UserHeader name the role and user of the caller a follower
	// authenticated before forwarding its write; the leader believes them only from a
	// request that carries the cluster secret.
	RoleHeader = "X-Mongorelay-Forwarded-Role"
	UserHeader = "X-Mongorelay-Forwarded-User"
)

// Why a node-to-node call was refused: 401 without the secret, 403 with a wrong one, or 403
// for a forwarded request naming a role that is none of Role's.
var (
	ErrNoSecret  = errors.New("cluster secret required")
	ErrBadSecret = errors.New("wrong cluster secret")
	ErrBadRole   = errors.New("unknown forwarded role")
)

// Secret is the cluster's shared secret (cluster.secret), which one node shows another. A nil
// *Secret is no secret: the node-to-node routes take any caller.
type Secret struct {
	value  string // "": no secret, only peer certificates (WithPeerCertificates)
	digest [sha256.Size]byte
	// peerCerts takes a request whose TLS client certificate the listener verified as a
	// node's: the listener asks for certificates of the cluster's CA only.
	peerCerts bool
}

// WithPeerCertificates returns s also taking, in place of the secret, a request over a TLS
// connection whose client certificate the listener verified (mutual TLS between the nodes,
// cluster.tls.*): the listener must verify client certificates against the cluster's CA and no
// other. With s nil, such a certificate is the only way in.
func (s *Secret) WithPeerCertificates() *Secret {
	t := &Secret{}
	if s != nil {
		*t = *s
	}
	t.peerCerts = true
	return t
}

// NewSecret returns the secret s ("": none, nil), which must pass CheckToken.
func NewSecret(s string) (*Secret, error) {
	if s == "" {
		return nil, nil
	}
	if err := CheckToken(s); err != nil {
		return nil, err
	}
	return &Secret{value: s, digest: sha256.Sum256([]byte(s))}, nil
}

// Enabled reports whether calls between nodes need the secret.
func (s *Secret) Enabled() bool { return s != nil }

// String hides the secret from logs and error messages.
func (s *Secret) String() string { return "[hidden]" }

// LogValue hides the secret from slog.
func (s *Secret) LogValue() slog.Value { return slog.StringValue("[hidden]") }

// Set puts the secret on h, for a call to another node; with no secret it does nothing.
func (s *Secret) Set(h http.Header) {
	if s != nil && s.value != "" {
		h.Set(SecretHeader, s.value)
	}
}

// Check returns nil when r carries the secret (or there is none), or comes with a verified
// peer certificate (WithPeerCertificates), else ErrNoSecret or ErrBadSecret. The comparison
// takes the same time wherever the secrets differ.
func (s *Secret) Check(r *http.Request) error {
	if s == nil {
		return nil
	}
	if s.peerCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return nil
	}
	got := r.Header.Get(SecretHeader)
	if got == "" || s.value == "" {
		return ErrNoSecret
	}
	if !same(sha256.Sum256([]byte(got)), s.digest) {
		return ErrBadSecret
	}
	return nil
}

// Middleware refuses a request that applies (every request when applies is nil) and does
// not carry the secret: 401 without it, 403 with a wrong one, in the error shape with the
// content type contentType. With no secret every request goes through.
func (s *Secret) Middleware(applies func(*http.Request) bool, contentType string, log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if s == nil {
			return next
		}
		return func(c echo.Context) error {
			req := c.Request()
			if applies != nil && !applies(req) {
				return next(c)
			}
			if err := s.Check(req); err != nil {
				return s.refuse(c, err, contentType, log)
			}
			return next(c)
		}
	}
}

// refuse answers a node-to-node request refused for err (ErrNoSecret, ErrBadSecret or
// ErrBadRole).
func (s *Secret) refuse(c echo.Context, err error, contentType string, log *slog.Logger) error {
	req := c.Request()
	status := http.StatusUnauthorized
	need := fmt.Sprintf("cluster.secret (header %s)", SecretHeader)
	switch {
	case s.peerCerts && s.value == "":
		need = "a node's certificate (cluster.tls.*) over HTTPS"
	case s.peerCerts:
		need += " or a node's certificate (cluster.tls.*) over HTTPS"
	}
	msg := fmt.Sprintf("%v: %s %s is a call between the nodes of a cluster and needs %s", err, req.Method, req.URL.Path, need)
	switch {
	case errors.Is(err, ErrBadRole):
		status, msg = http.StatusForbidden, fmt.Sprintf("%v: %s %s", err, req.Method, req.URL.Path)
	case errors.Is(err, ErrBadSecret):
		status = http.StatusForbidden
		msg = fmt.Sprintf("%v: %s %s carries a cluster secret other than this node's: give every node the same cluster.secret", err, req.Method, req.URL.Path)
	}
	log.Warn("refused a node-to-node request", "remote", req.RemoteAddr, "method", req.Method, "path", req.URL.Path, "err", err)
	return jsonerr.Write(c, status, contentType, jsonerr.Body{Code: status, Message: msg})
}

// forwardedUser returns the user a follower names in r (RoleHeader, UserHeader), when r names
// one and carries the secret s: ok is false when r names none; err is why r is refused when it
// names one without the secret.
func (s *Secret) forwardedUser(r *http.Request) (user User, ok bool, err error) {
	role := r.Header.Get(RoleHeader)
	if role == "" || s == nil {
		return User{}, false, nil
	}
	if err := s.Check(r); err != nil {
		return User{}, true, err
	}
	switch role {
	case Admin.String():
		user.Role = Admin
	case ReadOnly.String():
		user.Role = ReadOnly
	default:
		return User{}, true, fmt.Errorf("%w: %q in %s", ErrBadRole, role, RoleHeader)
	}
	user.Name = r.Header.Get(UserHeader)
	return user, true, nil
}

// SetForwardedUser names u on h, for the leader to take the caller this node authenticated.
func SetForwardedUser(h http.Header, u User) {
	h.Set(RoleHeader, u.Role.String())
	h.Set(UserHeader, u.Name)
}

// userKey is where Middleware leaves the authenticated user in the echo context.
const userKey = "httpauth.user"

// UserOf returns the user Middleware authenticated c's request as, if any.
func UserOf(c echo.Context) (User, bool) {
	u, ok := c.Get(userKey).(User)
	return u, ok
}
