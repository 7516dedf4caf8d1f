package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/tasks/config"
)

// The Kafka Connect endpoints. Every config that leaves the node goes through redacted.

// connectorType is what Connect calls a source connector.
const connectorType = "source"

func (s *Server) root(c echo.Context) error {
	info := s.cl.Info()
	return connectJSON(c, http.StatusOK, map[string]string{
		"version": info.Version, "commit": info.Commit, "kafka_cluster_id": info.KafkaClusterID,
		"cluster_id": info.ClusterID, "node_id": info.NodeID,
	})
}

// connectorInfo is GET /connectors/{name}: Connect's ConnectorInfo.
type connectorInfo struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	Tasks  []taskID          `json:"tasks"`
	Type   string            `json:"type"`
}

type taskID struct {
	Connector string `json:"connector"`
	Task      int    `json:"task"`
}

func infoOf(cn Connector) connectorInfo {
	out := connectorInfo{Name: cn.Name, Config: redacted(cn.Name, cn.Config), Tasks: []taskID{}, Type: connectorType}
	for _, t := range cn.Tasks {
		out.Tasks = append(out.Tasks, taskID{Connector: cn.Name, Task: t.ID})
	}
	return out
}

func (s *Server) listConnectors(c echo.Context) error {
	conns := s.cl.Connectors()
	expand := c.QueryParams()["expand"]
	if len(expand) == 0 {
		names := make([]string, 0, len(conns))
		for _, cn := range conns {
			names = append(names, cn.Name)
		}
		return connectJSON(c, http.StatusOK, names)
	}
	out := make(map[string]map[string]any, len(conns))
	for _, cn := range conns {
		entry := map[string]any{}
		if slices.Contains(expand, "info") {
			entry["info"] = infoOf(cn)
		}
		if slices.Contains(expand, "status") {
			st, err := s.cl.ConnectorStatus(c.Request().Context(), cn.Name)
			if err != nil {
				return err
			}
			entry["status"] = st
		}
		out[cn.Name] = entry
	}
	return connectJSON(c, http.StatusOK, out)
}

// createRequest is POST /connectors.
type createRequest struct {
	Name         string          `json:"name"`
	Config       json.RawMessage `json:"config"`
	InitialState string          `json:"initial_state"`
}

func (s *Server) createConnector(c echo.Context) error {
	var req createRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return newRESTError(http.StatusBadRequest, http.StatusBadRequest, `request has no "config" object: send {"name": "...", "config": {...}}`)
	}
	switch req.InitialState {
	case "", StateRunning, StatePaused, StateStopped:
	default:
		return newRESTError(http.StatusBadRequest, http.StatusBadRequest, "initial_state %q is not one of RUNNING, PAUSED, STOPPED", req.InitialState)
	}
	cfg, err := config.ParseConfigJSON(req.Name, req.Config)
	if err != nil {
		return badConfig(err)
	}
	raw := cfg.Raw()
	if err := s.cl.CreateConnector(c.Request().Context(), req.Name, raw, req.InitialState); err != nil {
		if errors.Is(err, ErrExists) {
			return newRESTError(http.StatusConflict, http.StatusConflict, "Connector %s already exists", req.Name)
		}
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/connectors/"+url.PathEscape(req.Name))
	return connectJSON(c, http.StatusCreated, connectorInfo{Name: req.Name, Config: cfg.Redacted(), Tasks: []taskID{}, Type: connectorType})
}

// badConfig answers an invalid config with 400 naming every bad key; a body that is not a
// config object at all is a 400 too.
func badConfig(err error) error {
	if _, ok := errors.AsType[*config.ValidationError](err); ok {
		return err
	}
	return newRESTError(http.StatusBadRequest, http.StatusBadRequest, "%s", err.Error())
}

// nameParam is the connector name of the path, unescaped.
func nameParam(c echo.Context) string {
	name := c.Param("name")
	if u, err := url.PathUnescape(name); err == nil {
		return u
	}
	return name
}

func (s *Server) connector(c echo.Context) (Connector, error) {
	name := nameParam(c)
	cn, ok := s.cl.Connector(name)
	if !ok {
		return Connector{}, notFound(name)
	}
	return cn, nil
}

func notFound(name string) error {
	return newRESTError(http.StatusNotFound, http.StatusNotFound, "Connector %s not found", name)
}

func (s *Server) getConnector(c echo.Context) error {
	cn, err := s.connector(c)
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, infoOf(cn))
}

func (s *Server) getConfig(c echo.Context) error {
	cn, err := s.connector(c)
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, redacted(cn.Name, cn.Config))
}

func (s *Server) putConfig(c echo.Context) error {
	name := nameParam(c)
	data, err := readAll(c)
	if err != nil {
		return err
	}
	cfg, err := config.ParseConfigJSON(name, data)
	if err != nil {
		return badConfig(err)
	}
	created, err := s.cl.PutConnectorConfig(c.Request().Context(), name, cfg.Raw())
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	info := connectorInfo{Name: name, Config: cfg.Redacted(), Tasks: []taskID{}, Type: connectorType}
	if cn, ok := s.cl.Connector(name); ok {
		info.Tasks = infoOf(cn).Tasks
	}
	return connectJSON(c, status, info)
}

func (s *Server) deleteConnector(c echo.Context) error {
	name := nameParam(c)
	if err := s.cl.DeleteConnector(c.Request().Context(), name); err != nil {
		if errors.Is(err, ErrNotFound) {
			return notFound(name)
		}
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) status(c echo.Context) error {
	name := nameParam(c)
	st, err := s.cl.ConnectorStatus(c.Request().Context(), name)
	if errors.Is(err, ErrNotFound) {
		return notFound(name)
	}
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, st)
}

func (s *Server) taskStatus(c echo.Context) error {
	name := nameParam(c)
	id, err := strconv.Atoi(c.Param("id"))
	if err != nil {
		return newRESTError(http.StatusNotFound, http.StatusNotFound, "Task %s of connector %s not found", c.Param("id"), name)
	}
	st, err := s.cl.ConnectorStatus(c.Request().Context(), name)
	if errors.Is(err, ErrNotFound) {
		return notFound(name)
	}
	if err != nil {
		return err
	}
	for _, t := range st.Tasks {
		if t.ID == id {
			return connectJSON(c, http.StatusOK, t)
		}
	}
	return newRESTError(http.StatusNotFound, http.StatusNotFound, "Task %d of connector %s not found", id, name)
}

// taskInfo is an entry of GET /connectors/{name}/tasks.
type taskInfo struct {
	ID     taskID            `json:"id"`
	Config map[string]string `json:"config"`
}

func (s *Server) tasks(c echo.Context) error {
	cn, err := s.connector(c)
	if err != nil {
		return err
	}
	base := redacted(cn.Name, cn.Config)
	out := make([]taskInfo, 0, len(cn.Tasks))
	for _, t := range cn.Tasks {
		cfg := maps.Clone(base)
		cfg["task.name"] = t.Name
		if len(t.Members) > 0 {
			cfg["task.collection.shards"] = strings.Join(t.Members, ",")
		} else {
			cfg["task.database"] = t.DB
			cfg["task.collection"] = t.Coll
			cfg["task.shard"] = fmt.Sprintf("%d-of-%d", t.Shard, t.Shards)
		}
		out = append(out, taskInfo{ID: taskID{Connector: cn.Name, Task: t.ID}, Config: cfg})
	}
	return connectJSON(c, http.StatusOK, out)
}

func (s *Server) setState(state string, status int) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := nameParam(c)
		if err := s.cl.SetTargetState(c.Request().Context(), name, state); err != nil {
			if errors.Is(err, ErrNotFound) {
				return notFound(name)
			}
			return err
		}
		return c.NoContent(status)
	}
}

// restart is POST /connectors/{name}/restart?includeTasks=&onlyFailed=: the connector lists its
// tasks again and, with includeTasks, its tasks (only the failed ones with onlyFailed) restart.
func (s *Server) restart(c echo.Context) error {
	name := nameParam(c)
	includeTasks, onlyFailed := queryBool(c, "includeTasks"), queryBool(c, "onlyFailed")
	var ids []int
	if includeTasks {
		st, err := s.cl.ConnectorStatus(c.Request().Context(), name)
		if errors.Is(err, ErrNotFound) {
			return notFound(name)
		}
		if err != nil {
			return err
		}
		for _, t := range st.Tasks {
			if !onlyFailed || t.State == StateFailed {
				ids = append(ids, t.ID)
			}
		}
	}
	if err := s.cl.RestartConnector(c.Request().Context(), name); err != nil {
		if errors.Is(err, ErrNotFound) {
			return notFound(name)
		}
		return err
	}
	if err := s.cl.RestartTasks(c.Request().Context(), name, ids); err != nil {
		return err
	}
	if !includeTasks {
		return c.NoContent(http.StatusNoContent)
	}
	st, err := s.cl.ConnectorStatus(c.Request().Context(), name)
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusAccepted, st)
}

func (s *Server) restartTask(c echo.Context) error {
	name := nameParam(c)
	id, err := strconv.Atoi(c.Param("id"))
	if err != nil {
		return newRESTError(http.StatusNotFound, http.StatusNotFound, "Task %s of connector %s not found", c.Param("id"), name)
	}
	if err := s.cl.RestartTasks(c.Request().Context(), name, []int{id}); err != nil {
		if errors.Is(err, ErrNotFound) {
			return newRESTError(http.StatusNotFound, http.StatusNotFound, "%s", err.Error())
		}
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func queryBool(c echo.Context, name string) bool {
	b, err := strconv.ParseBool(c.QueryParam(name))
	return err == nil && b
}

func readAll(c echo.Context) ([]byte, error) {
	var raw json.RawMessage
	if err := decodeBody(c, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// hidden replaces what a response may not show.
const hidden = "[hidden]"

// redacted returns a stored config as it may be shown: every secret replaced by [hidden]
// (config.Config.Redacted). A config that no longer parses (written by another version) is
// redacted key by key, and keys this version does not know are hidden whole.
func redacted(name string, raw map[string]string) map[string]string {
	if c, err := config.Parse(name, raw); err == nil {
		return c.Redacted()
	}
	keys := map[string]config.Key{}
	for _, k := range config.Keys() {
		keys[k.Name] = k
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if key, ok := keys[k]; ok {
			out[k] = key.Redact(v)
		} else {
			out[k] = hidden
		}
	}
	return out
}
