package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

// POST /connectors/{name}/snapshot {"collections": ["db.coll", ...]}: an ad-hoc snapshot, as
// Debezium's execute-snapshot signal of type incremental: the named collections are copied
// again while they stream, their documents arriving as op "r" records (source.snapshot
// "incremental") in order with their changes.

// snapshotRequest is the body.
type snapshotRequest struct {
	Collections []string `json:"collections"`
}

// snapshotAccepted is the answer: the request's id, by which tasks tell it from others.
type snapshotAccepted struct {
	Connector   string   `json:"connector"`
	ID          uint64   `json:"id"`
	Collections []string `json:"collections"`
}

func (s *Server) requestSnapshot(c echo.Context) error {
	name := nameParam(c)
	var req snapshotRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if len(req.Collections) == 0 {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
			`request names no collection: send {"collections": ["<database>.<collection>", ...]}`)
	}
	for _, ns := range req.Collections {
		if db, coll, ok := strings.Cut(ns, "."); !ok || db == "" || coll == "" {
			return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
				"collection %q is not a <database>.<collection> name", ns)
		}
	}
	id, err := s.cl.RequestSnapshot(c.Request().Context(), name, req.Collections)
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound(name)
	case errors.Is(err, ErrConflict):
		return jsonerr.New(http.StatusConflict, http.StatusConflict,
			"%v: resume it first with PUT /connectors/%s/resume", err, name)
	case err != nil:
		return err
	}
	return connectJSON(c, http.StatusAccepted, snapshotAccepted{Connector: name, ID: id, Collections: req.Collections})
}
