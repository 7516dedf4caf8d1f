package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/forward"
	"github.com/mongorelay/mongorelay/internal/httpauth"
	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

// leader wraps every handler that needs the leader (writes, task status) and is the REST API's
// only way to it (forward.Do): h runs here first; if it returns a *forward.NotLeaderError the
// request, with the body h was given, goes to the leader, one hop, and the leader's status
// code, headers and body are the answer. While no leader is known it tries again, up to the
// forward wait, then answers 503. A request forwarded to this node that it cannot answer as
// leader gets 421, for the node that forwarded it to look again.
func (s *Server) leader(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		body, err := io.ReadAll(req.Body) // bounded by the body limit of every route
		if err != nil {
			return httpserve.BodyError(err)
		}
		run := func(context.Context) (struct{}, error) {
			req.Body = io.NopCloser(bytes.NewReader(body))
			return struct{}{}, h(c)
		}
		if req.Header.Get(forward.Header) != "" {
			c.Response().Before(func() {
				c.Response().Header().Set(forward.IndexHeader, strconv.FormatUint(s.cl.AppliedIndex(), 10))
			})
			_, err := run(req.Context())
			if nl, ok := errors.AsType[*forward.NotLeaderError](err); ok {
				return connectJSON(c, http.StatusMisdirectedRequest, forward.MisdirectedAnswer(nl))
			}
			return err
		}
		_, err = forward.Do(req.Context(), s.forwardWait, run, func(_ context.Context, addr string) (struct{}, bool, error) {
			answered, err := s.proxy(c, addr, body)
			return struct{}{}, answered, err
		})
		return err
	}
}

// proxy sends the request to the leader at addr and copies its answer. It reports false,
// without answering, when the leader could not be reached or no longer leads, so that the
// caller looks for the leader again.
//
// The request carries the caller's own Authorization header. With cluster.secret it also
// carries the secret and, once this node authenticated the caller, the caller's user and role,
// which the leader takes from a request with the secret instead of authenticating the caller
// again. Without cluster.secret the leader authenticates the caller itself, with the same users
// (every node has the same http.auth.*), and so trusts nothing this node says.
func (s *Server) proxy(c echo.Context, addr string, body []byte) (answered bool, err error) {
	req := c.Request()
	out, err := http.NewRequestWithContext(req.Context(), req.Method, s.scheme+"://"+addr+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("forward to the leader at %s: %w", addr, err)
	}
	for _, h := range []string{echo.HeaderContentType, echo.HeaderAccept, echo.HeaderAuthorization} {
		if v := req.Header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	out.Header.Set(forward.Header, "1")
	s.secret.Set(out.Header)
	if user, ok := httpauth.UserOf(c); ok && s.secret.Enabled() {
		httpauth.SetForwardedUser(out.Header, user)
	}
	resp, err := s.client.Do(out)
	if err != nil {
		if req.Context().Err() != nil {
			return false, fmt.Errorf("forward to the leader at %s: %w", addr, req.Context().Err())
		}
		s.log.Debug("forwarding to the leader failed; looking for it again", "leader_http", addr, "err", err)
		return false, nil
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		s.log.Debug("reading the leader's answer failed; looking for it again", "leader_http", addr, "err", err)
		return false, nil
	}
	if resp.StatusCode == http.StatusMisdirectedRequest {
		return false, nil
	}
	s.catchUp(req.Context(), resp.Header.Get(forward.IndexHeader))
	ct := resp.Header.Get(echo.HeaderContentType)
	if ct == "" {
		ct = echo.MIMEApplicationJSON
	}
	for _, h := range []string{echo.HeaderLocation, echo.HeaderWWWAuthenticate} {
		for _, v := range resp.Header.Values(h) {
			c.Response().Header().Add(h, v)
		}
	}
	return true, c.Blob(resp.StatusCode, ct, answer)
}

// catchUpWait bounds how long a follower waits to apply the state the leader answered from.
const catchUpWait = 5 * time.Second

// catchUp waits until this node has applied the index the leader's answer carried
// (forward.IndexHeader), so that the caller's next read here sees what it wrote. A follower
// that cannot catch up within catchUpWait answers anyway: the write is done, only this node's
// copy of it is late.
func (s *Server) catchUp(ctx context.Context, header string) {
	index, err := strconv.ParseUint(header, 10, 64)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	if err := s.cl.WaitApplied(ctx, index); err != nil {
		s.log.Warn("answering before this node applied the leader's write", "index", index, "err", err)
	}
}

// decodeBody reads a JSON request body into v, refusing what is not JSON.
func decodeBody(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	if err := dec.Decode(v); err != nil {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "request body is not valid JSON: %v", err)
	}
	return nil
}
