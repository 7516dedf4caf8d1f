// Package registryapi serves the schema registry with Confluent's REST API (DESIGN.md 7) on
// registry.listen: same paths, bodies, status codes and error shape
// {"error_code":40401,"message":"Subject 'x' not found."}, so that Confluent's serializers
// and tools work against it.
package registryapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/internal/jsonerr"
	"github.com/mongorelay/mongorelay/registry"
)

// SchemaRegistry is what the schema registry endpoints need: a
// *registry.Registry, or in a cluster whatever forwards its writes to the
// leader.
type SchemaRegistry interface {
	Register(ctx context.Context, subject, schema string) (int, error)
	SchemaByID(ctx context.Context, id int) (string, error)
	Lookup(subject, schema string, deleted bool) (registry.Schema, error)
	Subjects(deleted bool) []string
	Versions(subject string, deleted bool) ([]int, error)
	Version(subject string, version int, deleted bool) (registry.Schema, error)
	VersionsByID(id int, deleted bool) ([]registry.Schema, error)
	DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error)
	DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error)
	Compatibility(subject string) (registry.Compatibility, error)
	SetCompatibility(ctx context.Context, subject string, level registry.Compatibility) error
	DeleteCompatibility(ctx context.Context, subject string) (registry.Compatibility, error)
	CheckCompatibility(subject, schema string, version int) ([]string, error)
}

const (
	registryContentType = "application/vnd.schemaregistry.v1+json"
	// maxSchemaRequest bounds a request body on every route. A registration carries one
	// schema as an escaped JSON string: the widest documents' inferred schemas run to a
	// megabyte or two, which escaping inflates.
	maxSchemaRequest = 8 << 20
)

// Option configures NewServer.
type Option func(*options)

type options struct {
	users     *httpauth.Users
	openReads bool
}

// WithAuth makes the routes take only the callers users accepts: writes and deletes an
// admin; reads anyone, as consumers' deserializers send no credentials by default, unless
// authenticatedReads (registry.auth.reads), when they need a user of any role. The root stays
// open to health checks. Default: nil, every request is taken.
func WithAuth(users *httpauth.Users, authenticatedReads bool) Option {
	return func(o *options) { o.users, o.openReads = users, !authenticatedReads }
}

// NewServer returns an echo server with only the schema registry routes, for a node to serve
// on registry.listen. Unknown paths get Confluent's error shape too.
func NewServer(reg SchemaRegistry, logger *slog.Logger, opts ...Option) *echo.Echo {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	e := jsonerr.NewEcho(registryContentType)
	e.Use(httpserve.LimitBody(maxSchemaRequest, registryContentType),
		o.users.Middleware(func(method, route string) httpauth.Access { return access(method, route, o.openReads) }, registryContentType, logger))
	Mount(e, reg, logger)
	// Confluent answers {} at the root; health checks probe it. Only here:
	// a shared server has its own root.
	e.GET("/", func(c echo.Context) error { return writeJSON(c, http.StatusOK, struct{}{}) })
	e.GET("/openapi.json", openAPI)
	return e
}

// access is what each route asks of its caller when authentication is on. A lookup (POST
// /subjects/{subject}: is this schema registered?) and a compatibility check change nothing:
// they are reads, which a serializer that does not register its schemas sends. Reads are open
// when openReads; the root always is.
func access(method, route string, openReads bool) httpauth.Access {
	need := httpauth.MethodAccess(method)
	switch {
	case route == "/":
		return httpauth.Open
	case method == http.MethodPost && (route == "/subjects/:subject" || strings.HasPrefix(route, "/compatibility/")):
		need = httpauth.Read
	}
	if need == httpauth.Read && openReads {
		return httpauth.Open
	}
	return need
}

// Mount adds the schema registry routes to e. Handlers write their
// own error answers, so e's HTTPErrorHandler only sees routing errors.
func Mount(e *echo.Echo, reg SchemaRegistry, logger *slog.Logger) {
	h := &registryHandler{reg: reg, log: logger}
	e.GET("/schemas/types", h.wrap(h.schemaTypes))
	e.GET("/schemas/ids/:id", h.wrap(h.schemaByID))
	e.GET("/schemas/ids/:id/schema", h.wrap(h.rawSchemaByID))
	e.GET("/schemas/ids/:id/subjects", h.wrap(h.subjectsByID))
	e.GET("/schemas/ids/:id/versions", h.wrap(h.versionsByID))
	e.GET("/subjects", h.wrap(h.subjects))
	e.POST("/subjects/:subject", h.wrap(h.lookup))
	e.DELETE("/subjects/:subject", h.wrap(h.deleteSubject))
	e.GET("/subjects/:subject/versions", h.wrap(h.versions))
	e.POST("/subjects/:subject/versions", h.wrap(h.register))
	e.GET("/subjects/:subject/versions/:version", h.wrap(h.version))
	e.GET("/subjects/:subject/versions/:version/schema", h.wrap(h.rawVersion))
	e.DELETE("/subjects/:subject/versions/:version", h.wrap(h.deleteVersion))
	e.GET("/config", h.wrap(h.globalConfig))
	e.PUT("/config", h.wrap(h.setConfig))
	e.DELETE("/config", h.wrap(h.deleteConfig))
	e.GET("/config/:subject", h.wrap(h.subjectConfig))
	e.PUT("/config/:subject", h.wrap(h.setConfig))
	e.DELETE("/config/:subject", h.wrap(h.deleteConfig))
	e.POST("/compatibility/subjects/:subject/versions", h.wrap(h.compatibility))
	e.POST("/compatibility/subjects/:subject/versions/:version", h.wrap(h.compatibility))
}

type registryHandler struct {
	reg SchemaRegistry
	log *slog.Logger
}

// wrap turns an error a handler returns into Confluent's error answer,
// logging the ones that are the server's fault.
func (h *registryHandler) wrap(fn func(echo.Context) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := fn(c)
		if err == nil {
			return nil
		}
		re, ok := errors.AsType[*jsonerr.Error](err)
		if !ok {
			re = h.toRESTError(c, err)
		}
		if re.Status >= 500 {
			h.log.Error("schema registry request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		}
		return writeJSON(c, re.Status, re.Body)
	}
}

// toRESTError maps the registry's errors to Confluent's codes and messages,
// naming the subject, version or id of the request as Confluent does.
func (h *registryHandler) toRESTError(c echo.Context, err error) *jsonerr.Error {
	subject, version := pathParam(c, "subject"), c.Param("version")
	switch {
	case errors.Is(err, registry.ErrSubjectNotFound):
		return jsonerr.New(http.StatusNotFound, 40401, "Subject '%s' not found.", subject)
	case errors.Is(err, registry.ErrVersionNotFound):
		return jsonerr.New(http.StatusNotFound, 40402, "Version %s not found.", version)
	case errors.Is(err, registry.ErrSchemaNotFound):
		if id := c.Param("id"); id != "" {
			return jsonerr.New(http.StatusNotFound, 40403, "Schema %s not found", id)
		}
		return jsonerr.New(http.StatusNotFound, 40403, "Schema not found")
	case errors.Is(err, registry.ErrSubjectSoftDeleted):
		return jsonerr.New(http.StatusNotFound, 40404, "Subject '%s' was soft deleted. Set permanent=true to delete permanently", subject)
	case errors.Is(err, registry.ErrSubjectNotSoftDeleted):
		return jsonerr.New(http.StatusNotFound, 40405, "Subject '%s' was not deleted first before being permanently deleted", subject)
	case errors.Is(err, registry.ErrVersionSoftDeleted):
		return jsonerr.New(http.StatusNotFound, 40406, "Subject '%s' Version %s was soft deleted. Set permanent=true to delete permanently", subject, version)
	case errors.Is(err, registry.ErrVersionNotSoftDeleted):
		return jsonerr.New(http.StatusNotFound, 40407, "Subject '%s' Version %s was not deleted first before being permanently deleted", subject, version)
	case errors.Is(err, registry.ErrCompatibilityNotConfigured):
		return jsonerr.New(http.StatusNotFound, 40408, "Subject '%s' does not have subject-level compatibility configured", subject)
	case errors.Is(err, registry.ErrIncompatible):
		// Confluent answered error_code 409 until 8.2, 40901 since; clients
		// branch on the HTTP status, which is 409 in both.
		if ie, ok := errors.AsType[*registry.IncompatibleError](err); ok {
			return jsonerr.New(http.StatusConflict, http.StatusConflict, "%s", capitalize(ie.Error()))
		}
		return jsonerr.New(http.StatusConflict, http.StatusConflict, "%s", err.Error())
	case errors.Is(err, registry.ErrInvalidSchema):
		return jsonerr.New(http.StatusUnprocessableEntity, 42201, "%s", capitalize(err.Error()))
	case errors.Is(err, registry.ErrInvalidVersion):
		return invalidVersion(version)
	case errors.Is(err, registry.ErrInvalidCompatibility):
		return invalidCompatibility()
	case errors.Is(err, context.DeadlineExceeded):
		return jsonerr.New(http.StatusInternalServerError, 50002, "Operation timed out (see the node's log)")
	default:
		return jsonerr.New(http.StatusInternalServerError, 50001, "Error in the backend data store (see the node's log)")
	}
}

func invalidVersion(version string) *jsonerr.Error {
	return jsonerr.New(http.StatusUnprocessableEntity, 42202,
		`The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`, version)
}

func invalidCompatibility() *jsonerr.Error {
	return jsonerr.New(http.StatusUnprocessableEntity, 42203,
		"Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func writeJSON(c echo.Context, status int, v any) error {
	return jsonerr.Write(c, status, registryContentType, v)
}

// pathParam returns a path parameter unescaped: echo matches on the raw path
// when the request has escapes that matter (a subject with a %2F, say) and
// then leaves them in the parameter.
func pathParam(c echo.Context, name string) string {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// flag reads a boolean query parameter leniently: Python's client sends
// "True" and "False".
func flag(c echo.Context, name string) bool {
	b, err := strconv.ParseBool(c.QueryParam(name))
	return err == nil && b
}

// parseVersion reads a version path parameter: a number in [1, 2^31-1], or
// "latest" (or -1, which Confluent takes for latest too).
func parseVersion(c echo.Context) (int, error) {
	s := c.Param("version")
	if s == "latest" {
		return registry.LatestVersion, nil
	}
	v, err := strconv.ParseInt(s, 10, 32)
	switch {
	case err != nil:
		return 0, invalidVersion(s)
	case v == -1:
		return registry.LatestVersion, nil
	case v < 1:
		return 0, invalidVersion(s)
	}
	return int(v), nil
}

func parseID(c echo.Context) (int, error) {
	s := c.Param("id")
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, jsonerr.New(http.StatusNotFound, 40403, "Schema %s not found", s)
	}
	return int(id), nil
}

// schemaRequest is the body of a registration, lookup or compatibility
// check. Fields Confluent has and this registry does not use (metadata,
// ruleSet) are ignored.
type schemaRequest struct {
	Schema     string            `json:"schema"`
	SchemaType string            `json:"schemaType"`
	References []json.RawMessage `json:"references"`
}

func readSchemaRequest(c echo.Context) (schemaRequest, error) {
	var req schemaRequest
	data, err := io.ReadAll(c.Request().Body) // bounded by the body limit of every route
	if err != nil {
		return req, httpserve.BodyError(err)
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return req, jsonerr.New(http.StatusBadRequest, 400, "Invalid request body: %v", err)
	}
	if req.Schema == "" {
		return req, jsonerr.New(http.StatusUnprocessableEntity, 42201, "Empty schema")
	}
	if err := registry.CheckSchemaType(req.SchemaType); err != nil {
		return req, err
	}
	if len(req.References) > 0 {
		return req, jsonerr.New(http.StatusUnprocessableEntity, 42201, "Invalid schema: schema references are not supported")
	}
	return req, nil
}

// versionBody is a subject version as Confluent writes it; schemaType is
// left out, as Confluent does for AVRO.
type versionBody struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
}

func toVersionBody(s registry.Schema) versionBody {
	return versionBody{Subject: s.Subject, Version: s.Version, ID: s.ID, Schema: s.Schema}
}

func (h *registryHandler) schemaTypes(c echo.Context) error {
	return writeJSON(c, http.StatusOK, []string{registry.SchemaTypeAvro})
}

func (h *registryHandler) schemaByID(c echo.Context) error {
	id, err := parseID(c)
	if err != nil {
		return err
	}
	s, err := h.reg.SchemaByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]string{"schema": s})
}

func (h *registryHandler) rawSchemaByID(c echo.Context) error {
	id, err := parseID(c)
	if err != nil {
		return err
	}
	s, err := h.reg.SchemaByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, registryContentType, []byte(s))
}

func (h *registryHandler) subjectsByID(c echo.Context) error {
	id, err := parseID(c)
	if err != nil {
		return err
	}
	vs, err := h.reg.VersionsByID(id, flag(c, "deleted"))
	if err != nil {
		return err
	}
	out := []string{}
	for _, v := range vs {
		if len(out) == 0 || out[len(out)-1] != v.Subject {
			out = append(out, v.Subject)
		}
	}
	return writeJSON(c, http.StatusOK, out)
}

func (h *registryHandler) versionsByID(c echo.Context) error {
	id, err := parseID(c)
	if err != nil {
		return err
	}
	vs, err := h.reg.VersionsByID(id, flag(c, "deleted"))
	if err != nil {
		return err
	}
	type subjectVersion struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
	}
	out := make([]subjectVersion, len(vs))
	for i, v := range vs {
		out[i] = subjectVersion{v.Subject, v.Version}
	}
	return writeJSON(c, http.StatusOK, out)
}

func (h *registryHandler) subjects(c echo.Context) error {
	return writeJSON(c, http.StatusOK, h.reg.Subjects(flag(c, "deleted")))
}

func (h *registryHandler) versions(c echo.Context) error {
	vs, err := h.reg.Versions(pathParam(c, "subject"), flag(c, "deleted"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, vs)
}

func (h *registryHandler) version(c echo.Context) error {
	s, err := h.getVersion(c)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toVersionBody(s))
}

func (h *registryHandler) rawVersion(c echo.Context) error {
	s, err := h.getVersion(c)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, registryContentType, []byte(s.Schema))
}

func (h *registryHandler) getVersion(c echo.Context) (registry.Schema, error) {
	v, err := parseVersion(c)
	if err != nil {
		return registry.Schema{}, err
	}
	return h.reg.Version(pathParam(c, "subject"), v, flag(c, "deleted"))
}

func (h *registryHandler) register(c echo.Context) error {
	req, err := readSchemaRequest(c)
	if err != nil {
		return err
	}
	id, err := h.reg.Register(c.Request().Context(), pathParam(c, "subject"), req.Schema)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]int{"id": id})
}

func (h *registryHandler) lookup(c echo.Context) error {
	req, err := readSchemaRequest(c)
	if err != nil {
		return err
	}
	s, err := h.reg.Lookup(pathParam(c, "subject"), req.Schema, flag(c, "deleted"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toVersionBody(s))
}

func (h *registryHandler) deleteSubject(c echo.Context) error {
	vs, err := h.reg.DeleteSubject(c.Request().Context(), pathParam(c, "subject"), flag(c, "permanent"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, vs)
}

func (h *registryHandler) deleteVersion(c echo.Context) error {
	v, err := parseVersion(c)
	if err != nil {
		return err
	}
	deleted, err := h.reg.DeleteVersion(c.Request().Context(), pathParam(c, "subject"), v, flag(c, "permanent"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, deleted)
}

// levelBody is a compatibility level as GET and DELETE answer it.
type levelBody struct {
	CompatibilityLevel registry.Compatibility `json:"compatibilityLevel"`
}

// levelUpdate is the answer to PUT /config.
type levelUpdate struct {
	Compatibility string `json:"compatibility"`
}

// levelRequest is the body of PUT /config: Confluent's clients name the
// level "compatibility", Python's set_config "compatibilityLevel".
type levelRequest struct {
	Compatibility      string `json:"compatibility"`
	CompatibilityLevel string `json:"compatibilityLevel"`
}

func (h *registryHandler) globalConfig(c echo.Context) error {
	level, err := h.reg.Compatibility("")
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, levelBody{level})
}

func (h *registryHandler) subjectConfig(c echo.Context) error {
	level, err := h.reg.Compatibility(pathParam(c, "subject"))
	if errors.Is(err, registry.ErrCompatibilityNotConfigured) && flag(c, "defaultToGlobal") {
		level, err = h.reg.Compatibility("")
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, levelBody{level})
}

// setConfig serves PUT /config and PUT /config/{subject}.
func (h *registryHandler) setConfig(c echo.Context) error {
	var req levelRequest
	if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return httpserve.BodyError(err)
		}
		return jsonerr.New(http.StatusBadRequest, 400, "Invalid request body: %v", err)
	}
	if req.Compatibility == "" {
		req.Compatibility = req.CompatibilityLevel
	}
	level, err := registry.ParseCompatibility(req.Compatibility)
	if err != nil {
		return invalidCompatibility()
	}
	if err := h.reg.SetCompatibility(c.Request().Context(), pathParam(c, "subject"), level); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, levelUpdate{string(level)})
}

// deleteConfig serves DELETE /config and DELETE /config/{subject}.
func (h *registryHandler) deleteConfig(c echo.Context) error {
	subject := pathParam(c, "subject")
	level, err := h.reg.DeleteCompatibility(c.Request().Context(), subject)
	if errors.Is(err, registry.ErrCompatibilityNotConfigured) {
		// What Confluent answers for a subject without a level of its own.
		return jsonerr.New(http.StatusNotFound, 40401, "Subject '%s' not found.", subject)
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, levelBody{level})
}

// compatibility serves POST /compatibility/subjects/{subject}/versions[/{version}].
func (h *registryHandler) compatibility(c echo.Context) error {
	version := registry.AllVersions
	if c.Param("version") != "" {
		var err error
		if version, err = parseVersion(c); err != nil {
			return err
		}
	}
	verbose := flag(c, "verbose")
	req, err := readSchemaRequest(c)
	if err != nil {
		return err
	}
	msgs, err := h.reg.CheckCompatibility(pathParam(c, "subject"), req.Schema, version)
	if errors.Is(err, registry.ErrInvalidSchema) && verbose {
		msgs, err = []string{err.Error()}, nil
	}
	if err != nil {
		return err
	}
	type answer struct {
		IsCompatible bool     `json:"is_compatible"`
		Messages     []string `json:"messages,omitzero"`
	}
	out := answer{IsCompatible: len(msgs) == 0}
	if verbose {
		out.Messages = msgs
		if out.Messages == nil {
			out.Messages = []string{}
		}
	}
	return writeJSON(c, http.StatusOK, out)
}
