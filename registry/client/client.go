// Package client gives tasks schema ids: an HTTP client for an external
// Confluent-compatible registry (schema.registry.url), and a cache in front
// of any registry so that a schema already seen costs no I/O.
//
// *Client and *registry.Registry have the same Register, SchemaByID and
// Latest methods and return the same sentinel errors, so a task can use
// either behind one small interface of its own.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mongorelay/mongorelay/registry"
)

const (
	contentType = "application/vnd.schemaregistry.v1+json"
	accept      = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
	// maxResponse bounds what a misbehaving server can make us read.
	maxResponse = 64 << 20
)

// Opt configures a Client.
type Opt func(*Client)

// HTTPClient sets the HTTP client, for TLS settings or a proxy. Default: a
// client with a 30s timeout; a request's context can cut it shorter.
func HTTPClient(hc *http.Client) Opt { return func(c *Client) { c.hc = hc } }

// BasicAuth sets the credentials sent with every request. Default: those in
// the URL's user info, if any.
func BasicAuth(user, password string) Opt {
	return func(c *Client) { c.user, c.password = user, password }
}

// Client talks to an external Confluent-compatible schema registry.
type Client struct {
	urls           []*url.URL
	hc             *http.Client
	user, password string
	// good is the index of the URL that answered last: requests start there.
	good atomic.Int32
}

// New returns a client of the registry at urls: one URL or several separated
// by commas, as in Confluent's schema.registry.url. A request goes to the
// URL that answered last and moves to the next when it cannot connect.
func New(urls string, opts ...Opt) (*Client, error) {
	c := &Client{hc: &http.Client{Timeout: 30 * time.Second}}
	for _, raw := range strings.Split(urls, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("schema registry URL %q: want http(s)://host[:port][/path]", raw)
		}
		if u.User != nil && c.user == "" {
			c.user = u.User.Username()
			c.password, _ = u.User.Password()
		}
		u.User = nil
		u.Path = strings.TrimRight(u.Path, "/")
		c.urls = append(c.urls, u)
	}
	if len(c.urls) == 0 {
		return nil, errors.New("schema registry URL: none given")
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is an error answer of the registry. It matches the registry
// package's sentinel errors (ErrSubjectNotFound, ErrIncompatible, ...) with
// errors.Is, by its error code.
type Error struct {
	StatusCode int    // HTTP status
	Code       int    `json:"error_code"`
	Message    string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("schema registry: %s (HTTP %d, error code %d)", e.Message, e.StatusCode, e.Code)
}

var sentinels = map[int]error{
	40401: registry.ErrSubjectNotFound,
	40402: registry.ErrVersionNotFound,
	40403: registry.ErrSchemaNotFound,
	40404: registry.ErrSubjectSoftDeleted,
	40405: registry.ErrSubjectNotSoftDeleted,
	40406: registry.ErrVersionSoftDeleted,
	40407: registry.ErrVersionNotSoftDeleted,
	40408: registry.ErrCompatibilityNotConfigured,
	409:   registry.ErrIncompatible,
	40901: registry.ErrIncompatible, // Confluent 8.2 and later
	42201: registry.ErrInvalidSchema,
	42202: registry.ErrInvalidVersion,
	42203: registry.ErrInvalidCompatibility,
}

// Is reports whether the registry's error code means target.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && s == target
}

// Register registers schema under subject, or finds it there, and returns
// its id.
func (c *Client) Register(ctx context.Context, subject, schema string) (int, error) {
	var out struct {
		ID int `json:"id"`
	}
	path := "/subjects/" + url.PathEscape(subject) + "/versions"
	if err := c.do(ctx, http.MethodPost, path, map[string]string{"schema": schema}, &out); err != nil {
		return 0, fmt.Errorf("register schema under subject %q: %w", subject, err)
	}
	return out.ID, nil
}

// SchemaByID returns the text of the schema with id.
func (c *Client) SchemaByID(ctx context.Context, id int) (string, error) {
	var out struct {
		Schema     string `json:"schema"`
		SchemaType string `json:"schemaType"`
	}
	if err := c.do(ctx, http.MethodGet, "/schemas/ids/"+strconv.Itoa(id), nil, &out); err != nil {
		return "", fmt.Errorf("get schema %d: %w", id, err)
	}
	if err := registry.CheckSchemaType(out.SchemaType); err != nil {
		return "", fmt.Errorf("get schema %d: %w", id, err)
	}
	return out.Schema, nil
}

// Latest returns the newest version of subject.
func (c *Client) Latest(ctx context.Context, subject string) (registry.Schema, error) {
	return c.version(ctx, subject, "latest")
}

// SchemaAt returns version v of subject.
func (c *Client) SchemaAt(ctx context.Context, subject string, v int) (registry.Schema, error) {
	return c.version(ctx, subject, strconv.Itoa(v))
}

func (c *Client) version(ctx context.Context, subject, v string) (registry.Schema, error) {
	var out struct {
		Subject    string `json:"subject"`
		Version    int    `json:"version"`
		ID         int    `json:"id"`
		Schema     string `json:"schema"`
		SchemaType string `json:"schemaType"`
	}
	path := "/subjects/" + url.PathEscape(subject) + "/versions/" + v
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return registry.Schema{}, fmt.Errorf("get version %s of subject %q: %w", v, subject, err)
	}
	if err := registry.CheckSchemaType(out.SchemaType); err != nil {
		return registry.Schema{}, fmt.Errorf("get version %s of subject %q: %w", v, subject, err)
	}
	return registry.Schema{Subject: out.Subject, Version: out.Version, ID: out.ID, Schema: out.Schema}, nil
}

// do sends a request, to each URL in turn until one answers, and decodes
// a 2xx answer into out or an error answer into an *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	first := int(c.good.Load())
	var errs []error
	for i := range c.urls {
		n := (first + i) % len(c.urls)
		resp, err := c.send(ctx, c.urls[n], method, path, body)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			continue
		}
		c.good.Store(int32(n))
		return decode(resp, out)
	}
	return errors.Join(errs...)
}

func (c *Client) send(ctx context.Context, base *url.URL, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base.String()+path, rd)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Accept", accept)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.user != "" || c.password != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	return c.hc.Do(req)
}

func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{StatusCode: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Code = resp.StatusCode
			e.Message = strings.TrimSpace(string(data))
			if e.Message == "" {
				e.Message = http.StatusText(resp.StatusCode)
			}
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
