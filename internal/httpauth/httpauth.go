// Package httpauth authenticates the callers of a node's REST and schema registry listeners
// (DESIGN.md 14): an admin bearer token (http.auth.token) and HTTP Basic users with a role
// (http.auth.basic.file, in the file format of Kafka Connect's
// BasicAuthSecurityRestExtension). Admins may write; read-only users may read.
package httpauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

// Role is what a user may do.
type Role int

const (
	// ReadOnly users may read: GET and HEAD, and the registry's lookups.
	ReadOnly Role = iota + 1
	// Admin users may read and write.
	Admin
)

func (r Role) String() string {
	if r == Admin {
		return "admin"
	}
	return "read-only"
}

// Access is what a route asks of its caller.
type Access int

const (
	// Open routes take requests without credentials: the health probes.
	Open Access = iota
	// Read routes take a user of any role.
	Read
	// Write routes take an admin.
	Write
)

// MethodAccess is the access of a route that changes nothing when its method says so: GET
// and HEAD are reads, every other method a write.
func MethodAccess(method string) Access {
	if method == http.MethodGet || method == http.MethodHead {
		return Read
	}
	return Write
}

// TokenUser is the name the holder of the admin token goes by in logs and answers.
const TokenUser = "admin token"

// MinTokenLength is the shortest admin token accepted: the token alone stands between
// whoever reaches a listener and every write, and a short one is found by trying.
const MinTokenLength = 16

// realm names the node's listeners in WWW-Authenticate challenges.
const realm = `realm="mongorelay"`

// Why a request was refused 401.
var (
	ErrNoCredentials  = errors.New("authentication required")
	ErrBadCredentials = errors.New("invalid credentials")
)

// User is who a request authenticated as.
type User struct {
	Name string
	Role Role
}

// Users are the callers a node accepts. A nil *Users accepts every request: authentication
// is off.
type Users struct {
	token *[sha256.Size]byte // the admin token's digest; nil: no token
	basic map[string]credential
	// nodes, when set, is the cluster secret with which a follower that forwards a write
	// names the caller it authenticated (TrustNodes).
	nodes *Secret
}

// TrustNodes returns u taking, on a request that carries the cluster secret s, the user and
// role a follower names in RoleHeader and UserHeader: the follower authenticated the caller
// with the same users before it forwarded the write. A request naming a user without the
// secret is refused. Without s (or users) it returns u.
func (u *Users) TrustNodes(s *Secret) *Users {
	if u == nil || s == nil {
		return u
	}
	t := *u
	t.nodes = s
	return &t
}

// credential is a Basic user's: its password's digest, so that comparing takes the same time
// whatever the password's length and wherever it first differs.
type credential struct {
	digest [sha256.Size]byte
	role   Role
}

// CheckToken says why token cannot be the admin token, or nil.
func CheckToken(token string) error {
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("holds spaces or control characters: give a random token such as the output of openssl rand -hex 32")
	}
	if len(token) < MinTokenLength {
		return fmt.Errorf("is shorter than %d characters: give a random token such as the output of openssl rand -hex 32", MinTokenLength)
	}
	return nil
}

// New returns the users of the admin token token ("": none) and of the Basic users file
// basicFile (nil: none), or nil when both are absent (authentication off).
func New(token string, basicFile []byte) (*Users, error) {
	if token == "" && basicFile == nil {
		return nil, nil
	}
	u := &Users{}
	if token != "" {
		if err := CheckToken(token); err != nil {
			return nil, fmt.Errorf("admin token %w", err)
		}
		d := sha256.Sum256([]byte(token))
		u.token = &d
	}
	if basicFile != nil {
		var err error
		if u.basic, err = parseBasicFile(basicFile); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Load is New with the Basic users file read from path ("": none); a problem of the file is
// reported with its path.
func Load(token, path string) (*Users, error) {
	if path == "" {
		return New(token, nil)
	}
	if token != "" {
		if err := CheckToken(token); err != nil {
			return nil, fmt.Errorf("admin token %w", err)
		}
	}
	file, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the users file: %w", err)
	}
	u, err := New(token, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// Enabled reports whether requests need credentials.
func (u *Users) Enabled() bool { return u != nil }

// Authenticate returns the user whose credentials r carries in its Authorization header:
// "Bearer <admin token>" or HTTP Basic. It returns ErrNoCredentials when r has none and
// ErrBadCredentials when they match no user, without telling an unknown user from a wrong
// password.
func (u *Users) Authenticate(r *http.Request) (User, error) {
	header := r.Header.Get(echo.HeaderAuthorization)
	if header == "" {
		return User{}, ErrNoCredentials
	}
	scheme, rest, _ := strings.Cut(header, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer") && u.token != nil:
		if same(sha256.Sum256([]byte(strings.TrimSpace(rest))), *u.token) {
			return User{Name: TokenUser, Role: Admin}, nil
		}
	case strings.EqualFold(scheme, "Basic") && u.basic != nil:
		name, password, ok := r.BasicAuth()
		if !ok {
			break
		}
		c, known := u.basic[name]
		// An unknown user's password is compared too, so that answering takes as long for
		// an unknown user as for a wrong password.
		if same(sha256.Sum256([]byte(password)), c.digest) && known {
			return User{Name: name, Role: c.role}, nil
		}
	}
	return User{}, ErrBadCredentials
}

func same(a, b [sha256.Size]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// challenges are the WWW-Authenticate values of a 401: one per way to authenticate.
func (u *Users) challenges() []string {
	var out []string
	if u.basic != nil {
		out = append(out, "Basic "+realm+`, charset="UTF-8"`)
	}
	if u.token != nil {
		out = append(out, "Bearer "+realm)
	}
	return out
}

// ways says in words how to authenticate, for the message of a 401.
func (u *Users) ways() string {
	var ways []string
	if u.token != nil {
		ways = append(ways, "the admin token of http.auth.token (Authorization: Bearer <token>)")
	}
	if u.basic != nil {
		ways = append(ways, "a user and password of http.auth.basic.file (HTTP Basic)")
	}
	return strings.Join(ways, " or ")
}

// Middleware checks every request against u before next handles it: a route's access is
// access(method, route), route being the echo route it matched ("" for none). A request
// without credentials, or with credentials that match no user, is answered 401 with a
// WWW-Authenticate challenge; a read-only user on a Write route 403; both in the error shape
// {"error_code":N,"message":"..."} with the content type contentType. With u nil every request
// goes through.
func (u *Users) Middleware(access func(method, route string) Access, contentType string, log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if !u.Enabled() {
			return next
		}
		return func(c echo.Context) error {
			req := c.Request()
			need := access(req.Method, c.Path())
			if need == Open {
				return next(c)
			}
			user, forwarded, err := u.nodes.forwardedUser(req)
			if forwarded && err != nil {
				return u.nodes.refuse(c, err, contentType, log)
			}
			if !forwarded {
				user, err = u.Authenticate(req)
			}
			if err != nil {
				for _, ch := range u.challenges() {
					c.Response().Header().Add(echo.HeaderWWWAuthenticate, ch)
				}
				msg := fmt.Sprintf("%v: send %s", err, u.ways())
				if errors.Is(err, ErrBadCredentials) {
					name, _, _ := req.BasicAuth()
					log.Warn("refused a request with invalid credentials", "remote", req.RemoteAddr, "method", req.Method, "path", req.URL.Path, "user", name)
					msg = fmt.Sprintf("%v: the token, the user or the password is wrong", err)
				}
				return jsonerr.Write(c, http.StatusUnauthorized, contentType, jsonerr.Body{Code: http.StatusUnauthorized, Message: msg})
			}
			if need == Write && user.Role != Admin {
				log.Warn("refused a read-only user's write", "remote", req.RemoteAddr, "method", req.Method, "path", req.URL.Path, "user", user.Name)
				return jsonerr.Write(c, http.StatusForbidden, contentType, jsonerr.Body{Code: http.StatusForbidden,
					Message: fmt.Sprintf("user %q is read-only: %s %s needs an admin", user.Name, req.Method, req.URL.Path)})
			}
			c.Set(userKey, user)
			return next(c)
		}
	}
}
