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

// health is GET /health with KIP-1017's shape and codes: 200 "healthy" when the node knows a
// leader and is not fenced, so it can answer every request and runs its tasks; 503 "starting"
// while it knows no leader (it is joining its cluster, or an election is under way: writes
// wait for one); 500 "unhealthy" while it is fenced (it has not reached the leader for
// worker.lease and runs no task), or while its build is older than a Raft command it could not
// read (RefusedCommand). The node's view of its cluster follows, beyond Connect's
// fields.
func (s *Server) health(c echo.Context) error {
	h, status := s.healthOf()
	return connectJSON(c, status, h)
}

func (s *Server) healthOf() (Health, int) {
	h := s.cl.Health()
	switch {
	case h.RefusedCommand != "":
		h.Status, h.Message = "unhealthy", "this node's build refused a Raft command the other nodes applied: upgrade this node"
		return h, http.StatusInternalServerError
	case h.Leader == "":
		h.Status, h.Message = "starting", "no leader is known yet: the node is joining its cluster or an election is under way"
		return h, http.StatusServiceUnavailable
	case h.Fenced:
		h.Status, h.Message = "unhealthy", "the node has not reached the leader for worker.lease and runs no task"
		return h, http.StatusInternalServerError
	}
	h.Status, h.Message = "healthy", "the node knows its leader and runs its tasks"
	return h, http.StatusOK
}

// ready answers 200 when the node knows a leader and is not fenced: it can take writes (by
// forwarding) and runs its tasks; 503 otherwise.
func (s *Server) ready(c echo.Context) error {
	h, status := s.healthOf()
	if status != http.StatusOK {
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
