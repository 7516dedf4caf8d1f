package api

import (
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

// loggers holds the level of the node's logger and when the API last changed it.
type loggers struct {
	level    *slog.LevelVar // nil: the logger's level cannot change
	mu       sync.Mutex
	modified time.Time // zero: never
}

func newLoggers(l *slog.Logger) *loggers {
	if lh, ok := l.Handler().(LevelHandler); ok {
		return &loggers{level: lh.LevelVar()}
	}
	return &loggers{}
}

// loggerLevel is Connect's LoggerLevel.
type loggerLevel struct {
	Level string `json:"level"`
	// LastModified is when the level was last set through the API, in Unix milliseconds;
	// absent when it never was.
	LastModified *int64 `json:"last_modified,omitempty"`
}

func (l *loggers) get() (loggerLevel, bool) {
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
// loggers changed. ?scope=cluster, which in Kafka Connect sets the level on every worker, is
// refused: set it on each node.
func (s *Server) setLogger(c echo.Context) error {
	name := c.Param("logger")
	if strings.EqualFold(c.QueryParam("scope"), "cluster") {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
			"scope=cluster is not supported: set the level on each node (scope=worker, the default)")
	}
	var req struct {
		Level *string `json:"level"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.Level == nil {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, `request has no "level": send {"level": "DEBUG"}`)
	}
	level, ok := levels[strings.ToUpper(strings.TrimSpace(*req.Level))]
	if !ok {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
			"Invalid log level '%s': use one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF", *req.Level)
	}
	if name != rootLogger || s.loggers.level == nil {
		return loggerNotFound(name)
	}
	s.loggers.mu.Lock()
	s.loggers.level.Set(level)
	s.loggers.modified = time.Now()
	s.loggers.mu.Unlock()
	s.log.Info("log level changed", "logger", name, "level", levelName(level))
	return connectJSON(c, http.StatusOK, []string{rootLogger})
}
