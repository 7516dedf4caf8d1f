package registryapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDocument describes every route of the schema registry listener (NewServer's). A
// test of the worker, which serves it on registry.listen, checks it against those routes.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPI is GET /openapi.json: a read, open unless registry.auth.reads.
func openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}
