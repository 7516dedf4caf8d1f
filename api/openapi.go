package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/api/ui"
)

// The REST listener's self-description: its OpenAPI document and the status page, both
// embedded in the binary.

// openAPIDocument describes every route of the REST listener: this package's and the
// node-to-node routes under /internal/ (package peer). A test of the worker, which mounts
// both, checks it against the routes it serves.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPI is GET /openapi.json.
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}

// statusPage is GET /ui. It is open when authentication is on: the page holds no data, and
// every call it makes carries the credentials given on it (or the browser's Basic ones).
func (s *Server) statusPage(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.HTMLBlob(http.StatusOK, ui.Page())
}
