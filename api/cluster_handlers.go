package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
)

// The cluster's own endpoints: GET /cluster, health, membership and what nodes send each
// other under /internal/.

func (s *Server) overview(c echo.Context) error {
	ov, err := s.cl.Overview(c.Request().Context())
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, ov)
}

func (s *Server) health(c echo.Context) error {
	return connectJSON(c, http.StatusOK, s.cl.Health())
}

// ready answers 200 when the node knows a leader and is not fenced: it can take writes (by
// forwarding) and runs its tasks; 503 otherwise.
func (s *Server) ready(c echo.Context) error {
	h := s.cl.Health()
	status := http.StatusOK
	if h.Leader == "" || h.Fenced {
		status = http.StatusServiceUnavailable
	}
	return connectJSON(c, status, h)
}

// removeNode is DELETE /cluster/nodes/{id} (mongorelay worker leave): the node leaves the
// cluster and its tasks move at once.
func (s *Server) removeNode(c echo.Context) error {
	if err := s.cl.RemoveNode(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// heartbeat is never forwarded: a heartbeat counts only when the leader itself gets it, so a
// node that is not the leader answers 421 naming the leader, and the sender goes there.
func (s *Server) heartbeat(c echo.Context) error {
	var hb Heartbeat
	if err := decodeBody(c, &hb); err != nil {
		return err
	}
	ack, err := s.cl.Heartbeat(c.Request().Context(), hb)
	if nl, ok := errors.AsType[*NotLeaderError](err); ok {
		return connectJSON(c, http.StatusMisdirectedRequest, notLeaderBody{
			errorBody: errorBody{Code: http.StatusMisdirectedRequest, Message: nl.Error()}, NotLeaderError: *nl})
	}
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, ack)
}

func (s *Server) join(c echo.Context) error {
	var req JoinRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	res, err := s.cl.Join(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, res)
}

// registryWrite applies a follower's schema registry write on the leader. A registry error is
// answered 400 with its kind, for the follower to rebuild it.
func (s *Server) registryWrite(c echo.Context) error {
	var call RegistryCall
	if err := decodeBody(c, &call); err != nil {
		return err
	}
	res, err := s.cl.RegistryWrite(c.Request().Context(), call)
	if _, ok := errors.AsType[*NotLeaderError](err); ok {
		return err
	}
	if err != nil {
		body := encodeRegistryError(http.StatusBadRequest, err)
		status := http.StatusBadRequest
		if body.Kind == "" {
			status = http.StatusInternalServerError
			body.Code = status
			s.log.Error("schema registry write failed", "op", call.Op, "subject", call.Subject, "err", err)
		}
		return connectJSON(c, status, body)
	}
	return connectJSON(c, http.StatusOK, res)
}
