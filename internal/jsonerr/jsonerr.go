// Package jsonerr is the error answer every HTTP listener of a node gives: Kafka Connect's REST
// API and Confluent's registry API both answer {"error_code": N, "message": "..."}, with the
// status code and, for Confluent, a finer error code.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Body is an error answer.
type Body struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

// Error is an answer a handler gives up with: its status code and body.
type Error struct {
	Status int
	Body   Body
}

func (e *Error) Error() string { return e.Body.Message }

// New returns the answer status with error code code and a message.
func New(status, code int, format string, args ...any) *Error {
	return &Error{Status: status, Body: Body{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// Write writes v as JSON with the content type contentType.
func Write(c echo.Context, status int, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	return c.Blob(status, contentType, b)
}

// WriteHTTP writes the error answer status with code and message, in JSON with the content
// type contentType, for handlers outside echo (the listener's own answers).
func WriteHTTP(w http.ResponseWriter, status int, contentType string, code int, message string) {
	b, _ := json.Marshal(Body{Code: code, Message: message}) // a struct of an int and a string always encodes
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// NewEcho returns an echo server whose own errors (no route, wrong method) are answered in
// this shape with the content type contentType; handlers write their own answers.
func NewEcho(contentType string) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status := http.StatusInternalServerError
		if he, ok := errors.AsType[*echo.HTTPError](err); ok {
			status = he.Code
		}
		_ = Write(c, status, contentType, Body{Code: status, Message: fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))})
	}
	return e
}
