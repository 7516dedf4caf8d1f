package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

// Kafka Connect's offsets API (KIP-875): GET /connectors/{name}/offsets in any state, DELETE
// and PATCH only while the connector is STOPPED.

// connectorOffsets is Connect's ConnectorOffsets.
type connectorOffsets struct {
	Offsets []Offset `json:"offsets"`
}

// message is Connect's Message, the answer to an offsets change.
type message struct {
	Message string `json:"message"`
}

func (s *Server) getOffsets(c echo.Context) error {
	name := nameParam(c)
	offs, err := s.cl.ConnectorOffsets(c.Request().Context(), name)
	if errors.Is(err, ErrNotFound) {
		return notFound(name)
	}
	if err != nil {
		return err
	}
	if offs == nil {
		offs = []Offset{}
	}
	return connectJSON(c, http.StatusOK, connectorOffsets{Offsets: offs})
}

// offsetsError answers an offsets change that failed: 404 for no such connector, 400 while
// it is not STOPPED, saying how to stop it.
func offsetsError(name string, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound(name)
	case errors.Is(err, ErrNotStopped):
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
			"Connectors must be in the STOPPED state before their offsets can be modified (%v): stop it first with PUT /connectors/%s/stop", err, name)
	}
	return err
}

// resetOffsets is DELETE /connectors/{name}/offsets: every offset of the STOPPED connector
// is deleted; resumed, it starts as a new connector would (snapshot.mode).
func (s *Server) resetOffsets(c echo.Context) error {
	name := nameParam(c)
	if err := s.cl.ResetOffsets(c.Request().Context(), name); err != nil {
		return offsetsError(name, err)
	}
	return connectJSON(c, http.StatusOK, message{"The offsets for this connector have been reset successfully"})
}

// alterOffsets is PATCH /connectors/{name}/offsets {"offsets": [{"partition": {...},
// "offset": {...}}]}: each partition's offset is replaced (null deletes it) while the
// connector is STOPPED. A source offset is {"resume_token": {"_data": "..."}} (or the
// token's _data as a string) or {"cluster_time": {"t": .., "i": ..}}.
func (s *Server) alterOffsets(c echo.Context) error {
	name := nameParam(c)
	var req struct {
		Offsets []Offset `json:"offsets"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if len(req.Offsets) == 0 {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
			`request has no offsets: send {"offsets": [{"partition": {...}, "offset": {...}}]}`)
	}
	if err := s.cl.AlterOffsets(c.Request().Context(), name, req.Offsets); err != nil {
		return offsetsError(name, err)
	}
	return connectJSON(c, http.StatusOK, message{"The offsets for this connector have been altered successfully"})
}
