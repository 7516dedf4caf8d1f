package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"

	"github.com/mongorelay/mongorelay/internal/configprovider"
)

// hidden replaces secrets wherever a value is shown, as Kafka Connect does.
const hidden = "[hidden]"

// Secret holds a value that must never be shown: every way of printing it
// (fmt verbs, JSON, slog) gives its redacted form. Reveal returns the value.
type Secret struct {
	value, shown string
}

func newSecret(value, shown string) Secret { return Secret{value: value, shown: shown} }

// Reveal returns the secret value, for the one place that needs it (the
// MongoDB client, the registry client).
func (s Secret) Reveal() string { return s.value }

// String returns the redacted form.
func (s Secret) String() string { return s.shown }

// Format prints the redacted form for every verb, so %#v and %x cannot
// leak the value either.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(s.shown))
		return
	}
	io.WriteString(f, s.shown)
}

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.shown) }

// LogValue logs the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown) }

// sensitiveOption reports whether a URI query option carries a secret: a
// password, a token, or authMechanismProperties (AWS_SESSION_TOKEN lives
// there).
func sensitiveOption(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "secret") ||
		strings.Contains(n, "token") || n == "authmechanismproperties"
}

// redactURI hides the password and sensitive query options of a URI
// (mongodb://, http://) without parsing it, so that even a malformed one
// can be shown in an error. It errs on hiding too much: the user info is
// taken to end at the last '@', because a password may hold an unescaped
// '/', '?' or '@' that a parser would stumble on.
func redactURI(s string) string { return redactURIKeeping(s, func(string) bool { return false }) }

// redactURIKeeping is redactURI showing the password or secret options
// that keep accepts.
func redactURIKeeping(s string, keep func(string) bool) string {
	prefix, rest, _, query := splitURI(s)
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, password, ok := strings.Cut(rest[:at], ":"); ok && !keep(password) {
			rest = user + ":" + hidden + rest[at:]
		}
	}
	if query == nil {
		return prefix + rest
	}
	opts := splitOptions(*query)
	for i, opt := range opts {
		if name, value, ok := strings.Cut(opt, "="); ok && sensitiveOption(name) && !keep(value) {
			opts[i] = name + "=" + hidden
		}
	}
	return prefix + rest + "?" + strings.Join(opts, "&")
}

// redactStoredURIs redacts a stored URI, or a comma-separated list of them,
// that may hold config provider references. A reference is shown as written:
// it says where the secret is, not what it is. A password or option made of
// references only is shown; one with any text of its own is hidden.
func redactStoredURIs(v string, list bool) string {
	masked, refs := maskReferences(v)
	items := []string{masked}
	if list {
		items = strings.Split(masked, ",")
	}
	for i, item := range items {
		items[i] = redactURIKeeping(item, refs.only)
	}
	return refs.unmask(strings.Join(items, ","))
}

// references are the config provider references of a stored value while it
// is redacted: each is replaced by a token without the characters a URI or a
// list is split on (a reference holds ':' and '/'), so that it stays one
// opaque piece, and put back once the value is redacted.
type references []string

func maskReferences(v string) (string, references) {
	var refs references
	masked, _ := configprovider.Replace(v, func(r configprovider.Reference) (string, error) {
		refs = append(refs, r.Text)
		return referenceToken(len(refs) - 1), nil
	})
	return masked, refs
}

// referenceToken stands for the i-th reference. A literal that looks like
// one shows nothing either: a password made of such text is shown as the
// reference's text.
func referenceToken(i int) string { return "\x00" + strconv.Itoa(i) + "\x00" }

// only reports whether s is made of reference tokens and nothing else.
func (refs references) only(s string) bool {
	rest := s
	for i := range refs {
		rest = strings.ReplaceAll(rest, referenceToken(i), "")
	}
	return s != "" && rest == ""
}

func (refs references) unmask(s string) string {
	for i, text := range refs {
		s = strings.ReplaceAll(s, referenceToken(i), text)
	}
	return s
}

// splitURI splits s into its scheme prefix ("mongodb://" or ""), the part
// up to the query, the password (between the first ':' and the last '@';
// "" if none) and the query (nil if none). The query starts at the first
// '?' after the last '@'.
func splitURI(s string) (prefix, rest, password string, query *string) {
	if scheme, r, ok := strings.Cut(s, "://"); ok {
		prefix, s = scheme+"://", r
	}
	hostStart := 0
	if at := strings.LastIndex(s, "@"); at >= 0 {
		if _, p, ok := strings.Cut(s[:at], ":"); ok {
			password = p
		}
		hostStart = at + 1
	}
	if q := strings.Index(s[hostStart:], "?"); q >= 0 {
		q += hostStart
		tail := s[q+1:]
		return prefix, s[:q], password, &tail
	}
	return prefix, s, password, nil
}

func splitOptions(query string) []string {
	return strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' })
}

// uriSecrets returns the secret strings in a URI, raw and unescaped, to
// scrub them from messages that might quote them (the driver's parse
// errors quote option values).
func uriSecrets(s string) []string {
	var out []string
	add := func(v string) {
		if v == "" {
			return
		}
		out = append(out, v)
		if u, err := url.PathUnescape(v); err == nil && u != v {
			out = append(out, u)
		}
	}
	_, _, password, query := splitURI(s)
	add(password)
	if query == nil {
		return out
	}
	for _, opt := range splitOptions(*query) {
		if name, value, ok := strings.Cut(opt, "="); ok && sensitiveOption(name) {
			add(value)
			for _, part := range strings.Split(value, ",") {
				_, v, _ := strings.Cut(part, ":")
				add(v)
			}
		}
	}
	return out
}

// scrub removes every secret of uri from msg.
func scrub(msg, uri string) string {
	for _, s := range uriSecrets(uri) {
		msg = strings.ReplaceAll(msg, s, hidden)
	}
	// An escape error quotes the bad escape, a piece of the password.
	if i := strings.Index(msg, "invalid password: "); i >= 0 {
		msg = msg[:i] + "invalid password: it is not correctly percent-encoded"
	}
	return msg
}
