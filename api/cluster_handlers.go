package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// The cluster's own endpoints: GET /cluster, health and membership. What nodes send each
// other under /internal/ is package peer's.

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
