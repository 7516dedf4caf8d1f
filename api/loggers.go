package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

// Kafka Connect's LoggingResource, GET and PUT /admin/loggers, over a node's log/slog logger.
// A node has one logger, "root": slog has no hierarchy of named loggers, so its level is every
// log line's. Levels take log4j's names and map onto slog's: TRACE (and ALL) below DEBUG,
// FATAL and OFF above ERROR.

// rootLogger is the one logger's name, Connect's name for the top of its hierarchy.
const rootLogger = "root"

// LevelHandler is a slog.Handler whose level can be changed while it runs: the node's
// (WithLogger). Without one, /admin/loggers lists no logger.
type LevelHandler interface {
	LevelVar() *slog.LevelVar
}

// Loggers holds the level of a node's logger and when it was last changed through the API,
// on this node (scope=worker) or on every node (scope=cluster, which each node applies with
// Set). Its methods are safe for concurrent use.
type Loggers struct {
	level    *slog.LevelVar // nil: the logger's level cannot change
	mu       sync.Mutex
	modified time.Time // zero: never
}

// NewLoggers returns the loggers of l, whose level can change if its handler is a
// LevelHandler.
func NewLoggers(l *slog.Logger) *Loggers {
	if lh, ok := l.Handler().(LevelHandler); ok {
		return &Loggers{level: lh.LevelVar()}
	}
	return &Loggers{}
}

// WithLoggers sets the loggers /admin/loggers shows and changes, for the node to apply the
// levels set for the whole cluster to the same ones. Default: NewLoggers of WithLogger's.
func WithLoggers(l *Loggers) ServerOption { return func(s *Server) { s.loggers = l } }

// Set sets logger's level, given by log4j's name, as of at. It fails for a logger or a level
// the node does not have.
func (l *Loggers) Set(logger, level string, at time.Time) error {
	lv, ok := levels[strings.ToUpper(strings.TrimSpace(level))]
	if !ok {
		return fmt.Errorf("invalid log level %q: use one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF", level)
	}
	if logger != rootLogger || l.level == nil {
		return fmt.Errorf("logger %s not found: a node has one logger, %s", logger, rootLogger)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.level.Set(lv)
	l.modified = at
	return nil
}

// loggerLevel is Connect's LoggerLevel.
type loggerLevel struct {
	Level string `json:"level"`
	// LastModified is when the level was last set through the API, in Unix milliseconds;
	// absent when it never was.
	LastModified *int64 `json:"last_modified,omitempty"`
}

func (l *Loggers) get() (loggerLevel, bool) {
	if l.level == nil {
		return loggerLevel{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := loggerLevel{Level: levelName(l.level.Level())}
	if !l.modified.IsZero() {
		ms := l.modified.UnixMilli()
		out.LastModified = &ms
	}
	return out, true
}

// levels are log4j's level names and the slog levels they set.
var levels = map[string]slog.Level{
	"ALL": slog.LevelDebug - 4, "TRACE": slog.LevelDebug - 4, "DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo,
	"WARN": slog.LevelWarn, "ERROR": slog.LevelError, "FATAL": slog.LevelError + 4, "OFF": slog.LevelError + 8,
}

// levelName is a slog level as log4j names it: the name of the highest level at or below it.
func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError+8:
		return "OFF"
	case l >= slog.LevelError+4:
		return "FATAL"
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	case l >= slog.LevelInfo:
		return "INFO"
	case l >= slog.LevelDebug:
		return "DEBUG"
	}
	return "TRACE"
}

// listLoggers is GET /admin/loggers: every logger and its level.
func (s *Server) listLoggers(c echo.Context) error {
	out := map[string]loggerLevel{}
	if lv, ok := s.loggers.get(); ok {
		out[rootLogger] = lv
	}
	return connectJSON(c, http.StatusOK, out)
}

func loggerNotFound(name string) error {
	return jsonerr.New(http.StatusNotFound, http.StatusNotFound,
		"Logger %s not found: a node has one logger, %s, whose level is that of every log line", name, rootLogger)
}

// getLogger is GET /admin/loggers/{logger}.
func (s *Server) getLogger(c echo.Context) error {
	name := c.Param("logger")
	lv, ok := s.loggers.get()
	if name != rootLogger || !ok {
		return loggerNotFound(name)
	}
	return connectJSON(c, http.StatusOK, lv)
}

// setLogger is PUT /admin/loggers/{logger} {"level": "DEBUG"}: this node logs at that level
// from now on, until it restarts (log.level then applies again), and the answer lists the
// loggers changed. With ?scope=cluster the level is set on every node through the cluster
// state, so that nodes restarting or joining later apply it too, and the answer is 204, as
// Kafka Connect's.
func (s *Server) setLogger(c echo.Context) error {
	name := c.Param("logger")
	switch scope := strings.ToLower(c.QueryParam("scope")); scope {
	case "", "worker":
	case "cluster":
		return s.leader(s.setClusterLogger)(c)
	default:
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
			"invalid scope %q: use worker (this node, the default) or cluster (every node)", c.QueryParam("scope"))
	}
	level, err := s.loggerRequest(c, name)
	if err != nil {
		return err
	}
	if err := s.loggers.Set(name, level, time.Now()); err != nil {
		return loggerNotFound(name)
	}
	s.log.Info("log level changed", "logger", name, "level", strings.ToUpper(level))
	return connectJSON(c, http.StatusOK, []string{rootLogger})
}

// setClusterLogger is PUT /admin/loggers/{logger}?scope=cluster, on the leader.
func (s *Server) setClusterLogger(c echo.Context) error {
	name := c.Param("logger")
	level, err := s.loggerRequest(c, name)
	if err != nil {
		return err
	}
	if err := s.cl.SetClusterLogLevel(c.Request().Context(), name, strings.ToUpper(level)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// loggerRequest reads a PUT /admin/loggers/{logger} body and checks its level and the logger.
func (s *Server) loggerRequest(c echo.Context, name string) (level string, err error) {
	var req struct {
		Level *string `json:"level"`
	}
	if err := decodeBody(c, &req); err != nil {
		return "", err
	}
	if req.Level == nil {
		return "", jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, `request has no "level": send {"level": "DEBUG"}`)
	}
	level = strings.TrimSpace(*req.Level)
	if _, ok := levels[strings.ToUpper(level)]; !ok {
		return "", jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
			"Invalid log level '%s': use one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF", *req.Level)
	}
	if name != rootLogger || s.loggers.level == nil {
		return "", loggerNotFound(name)
	}
	return level, nil
}
