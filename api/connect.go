// Package api serves a node's Kafka Connect-compatible REST API (DESIGN.md 7) with echo: the
// connectors, their tasks and status, the cluster overview and health. It reaches the node
// through the small interface Cluster declares and the connector kinds through Plugins.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/internal/jsonerr"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// This file serves a cluster node's REST API (DESIGN.md 7): Kafka Connect's paths, bodies,
// status codes and error shape {"error_code":N,"message":"..."}, so that Connect's tools and
// scripts work against it, plus GET /cluster, /health, /readyz, /metrics, the status page /ui
// and the OpenAPI document /openapi.json. Any node answers any request: reads from the state it
// has applied, writes (and task status, which only the leader knows) by forwarding them to
// the leader (forward.go).

const (
	// maxRequest bounds a request body on every route: a connector config is a few kilobytes.
	maxRequest = 1 << 20
	// defaultForwardWait is how long a write waits for a leader to be elected.
	defaultForwardWait = 10 * time.Second
)

// ServerOption configures NewServer.
type ServerOption func(*Server)

// WithLogger sets the logger. Default slog.Default(). When its handler is a LevelHandler,
// /admin/loggers changes its level.
func WithLogger(l *slog.Logger) ServerOption { return func(s *Server) { s.log = l } }

// WithForwardClient sets the HTTP client that forwards requests to the leader, and the
// scheme the leader's REST API is served with: "https" when the nodes have http.tls.* (give c
// a transport that trusts their certificates), else "http". Default: a client with a 30s
// timeout, over http.
func WithForwardClient(c *http.Client, scheme string) ServerOption {
	return func(s *Server) { s.client, s.scheme = c, scheme }
}

// WithAuth makes every route but the health probes take only the callers users accepts:
// reads (GET) any of them, writes an admin (access). Default: nil, every request is taken.
func WithAuth(users *httpauth.Users) ServerOption { return func(s *Server) { s.users = users } }

// WithClusterSecret makes the writes forwarded between nodes carry secret (cluster.secret):
// a request marked forwarded (forward.Header) without it is refused 401 (403 with a wrong
// one), and one with it may name the caller the follower authenticated, which the leader
// takes instead of authenticating the caller again. Default: nil, no secret.
func WithClusterSecret(secret *httpauth.Secret) ServerOption {
	return func(s *Server) { s.secret = secret }
}

// WithMetrics serves h, the node's Prometheus metrics, on GET /metrics: a read, open to
// read-only users when authentication is on. Default: nil, no /metrics route.
func WithMetrics(h http.Handler) ServerOption { return func(s *Server) { s.metrics = h } }

// WithForwardWait sets how long a request that needs the leader waits while none is known
// (an election) before it is answered 503. Default 10s.
func WithForwardWait(d time.Duration) ServerOption { return func(s *Server) { s.forwardWait = d } }

// Plugins are the connector kinds a node has, as the API needs them: *connector.Catalog.
type Plugins interface {
	// Validate checks a connector's config and returns it as it is stored, or a
	// *connector.ValidationError naming every bad key.
	Validate(name string, config map[string]string) (map[string]string, error)
	// Redact returns a stored config as responses may show it.
	Redact(name string, config map[string]string) map[string]string
	// RestoreHidden puts the stored secrets back into a config sent to replace the stored
	// one wherever it holds them as responses show them ([hidden]).
	RestoreHidden(name string, sent, stored map[string]string) map[string]string
	// Type is the config's connector type (source, sink).
	Type(config map[string]string) connector.Type
	// Describe describes every kind and its config keys (GET /connector-plugins).
	Describe() []connector.Description
	// Topics returns the topics the tasks with specs of a connector write, or an error
	// wrapping connector.ErrNoTopics when its kind does not say.
	Topics(name string, config map[string]string, specs []taskid.Spec) ([]string, error)
}

// Server is a node's REST API. Serve its Handler.
type Server struct {
	cl          Cluster
	plugins     Plugins
	log         *slog.Logger
	client      *http.Client
	scheme      string // of the leader's REST API
	forwardWait time.Duration
	users       *httpauth.Users
	secret      *httpauth.Secret
	loggers     *Loggers
	metrics     http.Handler
	e           *echo.Echo
}

// NewServer returns the REST API of the node cl, whose connector kinds are plugins.
func NewServer(cl Cluster, plugins Plugins, opts ...ServerOption) *Server {
	s := &Server{cl: cl, plugins: plugins, log: slog.Default(), client: &http.Client{Timeout: 30 * time.Second}, scheme: "http",
		forwardWait: defaultForwardWait}
	for _, o := range opts {
		o(s)
	}
	if s.loggers == nil {
		s.loggers = NewLoggers(s.log)
	}
	s.e = jsonerr.NewEcho(echo.MIMEApplicationJSON)
	forwarded := func(r *http.Request) bool { return r.Header.Get(forward.Header) != "" }
	s.e.Use(httpserve.LimitBody(maxRequest, echo.MIMEApplicationJSON),
		s.secret.Middleware(forwarded, echo.MIMEApplicationJSON, s.log),
		s.users.TrustNodes(s.secret).Middleware(access, echo.MIMEApplicationJSON, s.log))
	s.routes()
	return s
}

// access is what each route asks of its caller when authentication is on: the probes
// (/health, /readyz) are open, so that a load balancer or Kubernetes needs no credentials and
// learns no more than a node's Raft state, and so is the status page (/ui), which holds no
// data and asks for credentials itself; reads need a user; writes an admin.
func access(method, route string) httpauth.Access {
	if route == "/health" || route == "/readyz" || route == "/ui" {
		return httpauth.Open
	}
	return httpauth.MethodAccess(method)
}

// Handler is the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.e }

func (s *Server) routes() {
	e, h, lead := s.e, s.handle, s.leader
	e.GET("/", h(s.root))
	e.GET("/connectors", h(lead(s.listConnectors)))
	e.POST("/connectors", h(jsonBody(lead(s.createConnector))))
	e.GET("/connectors/:name", h(s.getConnector))
	e.DELETE("/connectors/:name", h(lead(s.deleteConnector)))
	e.GET("/connectors/:name/config", h(s.getConfig))
	e.PUT("/connectors/:name/config", h(jsonBody(lead(s.putConfig))))
	e.PATCH("/connectors/:name/config", h(jsonBody(lead(s.patchConfig))))
	e.GET("/connectors/:name/status", h(lead(s.status)))
	e.GET("/connectors/:name/tasks", h(s.tasks))
	e.GET("/connectors/:name/tasks/:id/status", h(lead(s.taskStatus)))
	e.PUT("/connectors/:name/pause", h(lead(s.setState(StatePaused, http.StatusAccepted))))
	e.PUT("/connectors/:name/resume", h(lead(s.setState(StateRunning, http.StatusAccepted))))
	e.PUT("/connectors/:name/stop", h(lead(s.setState(StateStopped, http.StatusNoContent))))
	e.POST("/connectors/:name/restart", h(lead(s.restart)))
	e.POST("/connectors/:name/tasks/:id/restart", h(lead(s.restartTask)))
	e.POST("/connectors/:name/snapshot", h(jsonBody(lead(s.requestSnapshot))))
	e.GET("/connectors/:name/offsets", h(s.getOffsets))
	e.DELETE("/connectors/:name/offsets", h(lead(s.resetOffsets)))
	e.PATCH("/connectors/:name/offsets", h(jsonBody(lead(s.alterOffsets))))
	e.GET("/connectors/:name/topics", h(s.topics))
	e.PUT("/connectors/:name/topics/reset", h(s.resetTopics))

	e.GET("/connector-plugins", h(s.listPlugins))
	e.GET("/connector-plugins/:plugin/config", h(s.pluginConfig))
	e.PUT("/connector-plugins/:plugin/config/validate", h(jsonBody(s.validatePlugin)))

	e.GET("/admin/loggers", h(s.listLoggers))
	e.GET("/admin/loggers/:logger", h(s.getLogger))
	e.PUT("/admin/loggers/:logger", h(jsonBody(s.setLogger)))

	e.GET("/cluster", h(s.overview))
	e.DELETE("/cluster/nodes/:id", h(lead(s.removeNode)))
	e.GET("/health", h(s.health))
	e.GET("/readyz", h(s.ready))

	e.GET("/openapi.json", h(s.openAPI))
	e.GET("/ui", h(s.statusPage))
	if s.metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.metrics))
	}
}

// handle turns the error a handler returns into Kafka Connect's error answer, logging the
// ones that are the server's fault.
func (s *Server) handle(fn echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := fn(c)
		if err == nil || c.Response().Committed {
			return nil
		}
		re := s.toRESTError(err)
		if re.Status >= 500 {
			s.log.Error("REST request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		}
		return connectJSON(c, re.Status, re.Body)
	}
}

// toRESTError maps errors to Kafka Connect's status codes.
func (s *Server) toRESTError(err error) *jsonerr.Error {
	if re, ok := errors.AsType[*jsonerr.Error](err); ok {
		return re
	}
	if ve, ok := errors.AsType[*connector.ValidationError](err); ok {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "%s", ve.Error())
	}
	if nl, ok := errors.AsType[*forward.NotLeaderError](err); ok {
		return jsonerr.New(http.StatusServiceUnavailable, http.StatusServiceUnavailable,
			"%s; try again once a leader is elected", nl.Error())
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrExists), errors.Is(err, ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrNotStopped):
		status = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	default:
		return jsonerr.New(status, status, "%s", httpserve.InternalError) // handle logs err
	}
	return jsonerr.New(status, status, "%s", err.Error())
}

// connectJSON writes v as Kafka Connect does: application/json.
func connectJSON(c echo.Context, status int, v any) error {
	return jsonerr.Write(c, status, echo.MIMEApplicationJSON, v)
}
