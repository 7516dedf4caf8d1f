package peer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/internal/jsonerr"
	"github.com/mongorelay/mongorelay/registry"
)

// The receiving ends.
const (
	heartbeatPath = Prefix + "heartbeat"
	joinPath      = Prefix + "join"
	registryPath  = Prefix + "registry"
	signalPath    = Prefix + "snapshot-signal"
)

// maxRequest bounds a request body on every route: a heartbeat lists a node's tasks with their
// traces, a registry write holds one schema.
const maxRequest = 16 << 20

// Node is what the receiving end needs of the node it runs on. Each returns a
// *forward.NotLeaderError where only the leader can answer.
type Node interface {
	// Heartbeat records a node's heartbeat, on the leader only. ErrUnknownNode means the
	// sender is not a member.
	Heartbeat(ctx context.Context, hb Heartbeat) (HeartbeatAck, error)
	// Join adds a node to the cluster, on the leader.
	Join(ctx context.Context, req JoinRequest) (JoinResponse, error)
	// RegistryWrite applies a follower registry's write, on the leader.
	RegistryWrite(ctx context.Context, call registry.Call) (registry.Result, error)
	// SnapshotSignal records an execute-snapshot signal as a snapshot request, on the leader.
	SnapshotSignal(ctx context.Context, s SnapshotSignal) (SnapshotSignalAnswer, error)
}

// Prefix is the path every receiving end is under, for a node to route to NewHandler.
const Prefix = "/internal/"

// NewHandler returns the receiving ends, answered for n. A heartbeat counts only when the
// leader itself gets it, and a registry write comes to the leader already: a node that does
// not lead answers them 421 naming the leader, and the sender goes there. A join may come to
// any member, which forwards it to the leader with c through forward.Do, waiting up to
// forwardWait for one. With secret (cluster.secret) every route refuses a request without it:
// 401, or 403 with a wrong one.
func NewHandler(n Node, c *Client, secret *httpauth.Secret, forwardWait time.Duration, log *slog.Logger) http.Handler {
	e := jsonerr.NewEcho(echo.MIMEApplicationJSON)
	e.Use(secret.Middleware(nil, echo.MIMEApplicationJSON, log), httpserve.LimitBody(maxRequest, echo.MIMEApplicationJSON))
	r := &receiver{n: n, c: c, wait: forwardWait, log: log}
	e.POST(heartbeatPath, r.heartbeat)
	e.POST(joinPath, r.join)
	e.POST(registryPath, r.registryWrite)
	e.POST(signalPath, r.snapshotSignal)
	return e
}

type receiver struct {
	n    Node
	c    *Client
	wait time.Duration
	log  *slog.Logger
}

func (r *receiver) heartbeat(c echo.Context) error {
	var hb Heartbeat
	if !decode(c, &hb) {
		return nil
	}
	ack, err := r.n.Heartbeat(c.Request().Context(), hb)
	if err != nil {
		return r.fail(c, err)
	}
	return c.JSON(http.StatusOK, ack)
}

func (r *receiver) join(c echo.Context) error {
	var req JoinRequest
	if !decode(c, &req) {
		return nil
	}
	local := func(ctx context.Context) (JoinResponse, error) { return r.n.Join(ctx, req) }
	var res JoinResponse
	var err error
	if c.Request().Header.Get(forward.Header) != "" {
		res, err = local(c.Request().Context())
	} else {
		res, err = forward.Do(c.Request().Context(), r.wait, local, func(ctx context.Context, addr string) (JoinResponse, bool, error) {
			res, err := r.c.joinOnLeader(ctx, addr, req)
			if _, moved := errors.AsType[*forward.NotLeaderError](err); moved {
				return res, false, nil
			}
			return res, err == nil, err
		})
	}
	if err != nil {
		return r.fail(c, err)
	}
	return c.JSON(http.StatusOK, res)
}

// registryWrite applies a follower's schema registry write on the leader. A registry error is
// answered 400 with its kind, for the follower to rebuild it.
func (r *receiver) registryWrite(c echo.Context) error {
	var call registry.Call
	if !decode(c, &call) {
		return nil
	}
	res, err := r.n.RegistryWrite(c.Request().Context(), call)
	switch {
	case err == nil:
		return c.JSON(http.StatusOK, res)
	case registry.IsAnswer(err):
		return c.JSON(http.StatusBadRequest, registry.EncodeError(http.StatusBadRequest, err))
	}
	return r.fail(c, err)
}

// snapshotSignal records a task's execute-snapshot signal on the leader.
func (r *receiver) snapshotSignal(c echo.Context) error {
	var s SnapshotSignal
	if !decode(c, &s) {
		return nil
	}
	res, err := r.n.SnapshotSignal(c.Request().Context(), s)
	if err != nil {
		return r.fail(c, err)
	}
	return c.JSON(http.StatusOK, res)
}

// fail answers err: 421 naming the leader, 410 for a node that is not a member, 403 for a
// refused one (ErrRefused, with the reason), else 500.
func (r *receiver) fail(c echo.Context, err error) error {
	if nl, ok := errors.AsType[*forward.NotLeaderError](err); ok {
		return c.JSON(http.StatusMisdirectedRequest, forward.MisdirectedAnswer(nl))
	}
	if errors.Is(err, ErrRefused) {
		r.log.Warn("refused a node-to-node request", "path", c.Request().URL.Path, "err", err)
		return c.JSON(http.StatusForbidden, jsonerr.Body{Code: http.StatusForbidden, Message: err.Error()})
	}
	if errors.Is(err, ErrUnknownNode) {
		return c.JSON(http.StatusGone, jsonerr.Body{Code: http.StatusGone, Message: err.Error()})
	}
	r.log.Error("node-to-node request failed", "path", c.Request().URL.Path, "err", err)
	return c.JSON(http.StatusInternalServerError, jsonerr.Body{Code: http.StatusInternalServerError, Message: httpserve.InternalError})
}

// decode reads the request body into v, or answers 400 (413 past the body limit) and reports
// false.
func decode(c echo.Context, v any) bool {
	if err := json.NewDecoder(c.Request().Body).Decode(v); err != nil {
		re := jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "request body is not valid JSON: %v", err)
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			re = httpserve.BodyError(err)
		}
		_ = c.JSON(re.Status, re.Body)
		return false
	}
	return true
}
