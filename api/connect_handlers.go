package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// The Kafka Connect endpoints. Every config that leaves the node goes through redacted.

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

func (s *Server) infoOf(cn Connector) connectorInfo {
	out := connectorInfo{Name: cn.Name, Config: s.shown(cn.Name, cn.Config), Tasks: []taskID{}, Type: string(s.plugins.Type(cn.Config))}
	for _, t := range listedTasks(cn) {
		out.Tasks = append(out.Tasks, taskID{Connector: cn.Name, Task: t.ID})
	}
	return out
}

// shown is a stored config as responses show it: redacted, with its name, as Kafka Connect
// stores it.
func (s *Server) shown(name string, config map[string]string) map[string]string {
	out := s.plugins.Redact(name, config)
	out[nameKey] = name
	return out
}

// nameKey is the config key of the connector's name: shown in every config, never stored (it
// can only be the connector's name).
const nameKey = "name"

// listedTasks are the tasks a connector shows: none while it is STOPPED, as in Kafka Connect,
// where stopping a connector removes its task configs.
func listedTasks(cn Connector) []Task {
	if cn.State == StateStopped {
		return nil
	}
	return cn.Tasks
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
			entry["info"] = s.infoOf(cn)
		}
		if slices.Contains(expand, "status") {
			st, err := s.cl.ConnectorStatus(c.Request().Context(), cn.Name)
			if err != nil {
				return err
			}
			entry["status"] = listedStatus(st)
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
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, `request has no "config" object: send {"name": "...", "config": {...}}`)
	}
	switch req.InitialState {
	case "", StateRunning, StatePaused, StateStopped:
	default:
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "initial_state %q is not one of RUNNING, PAUSED, STOPPED", req.InitialState)
	}
	raw, err := s.validate(req.Name, req.Config, nil)
	if err != nil {
		return err
	}
	if err := s.cl.CreateConnector(c.Request().Context(), req.Name, raw, req.InitialState); err != nil {
		if errors.Is(err, ErrExists) {
			return jsonerr.New(http.StatusConflict, http.StatusConflict, "Connector %s already exists", req.Name)
		}
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/connectors/"+url.PathEscape(req.Name))
	return connectJSON(c, http.StatusCreated, connectorInfo{Name: req.Name, Config: s.shown(req.Name, raw), Tasks: []taskID{}, Type: string(s.plugins.Type(raw))})
}

// validate reads a config object and checks it with its connector kind, returning it as it is
// stored. A config replacing stored (nil: none) keeps the stored secrets it sends back as
// responses show them. An invalid config is a 400 naming every bad key; a body that is not a
// config object at all is a 400 too.
func (s *Server) validate(name string, body []byte, stored map[string]string) (map[string]string, error) {
	raw, err := connector.ConfigFromJSON(body)
	if err != nil {
		return nil, jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "%s", err.Error())
	}
	return s.validateConfig(name, raw, stored)
}

// validateConfig is validate of a config already read. The config's name, which the kind
// checks against the connector's, is not stored: responses add it.
func (s *Server) validateConfig(name string, raw, stored map[string]string) (map[string]string, error) {
	raw = s.plugins.RestoreHidden(name, raw, stored)
	raw, err := s.plugins.Validate(name, raw)
	if err != nil {
		if _, ok := errors.AsType[*connector.ValidationError](err); ok {
			return nil, err
		}
		return nil, jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "%s", err.Error())
	}
	delete(raw, nameKey)
	return raw, nil
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
	return jsonerr.New(http.StatusNotFound, http.StatusNotFound, "Connector %s not found", name)
}

func (s *Server) getConnector(c echo.Context) error {
	cn, err := s.connector(c)
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, s.infoOf(cn))
}

func (s *Server) getConfig(c echo.Context) error {
	cn, err := s.connector(c)
	if err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, s.shown(cn.Name, cn.Config))
}

func (s *Server) putConfig(c echo.Context) error {
	name := nameParam(c)
	data, err := readAll(c)
	if err != nil {
		return err
	}
	var stored map[string]string
	if cn, ok := s.cl.Connector(name); ok {
		stored = cn.Config
	}
	raw, err := s.validate(name, data, stored)
	if err != nil {
		return err
	}
	created, err := s.cl.PutConnectorConfig(c.Request().Context(), name, raw)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Response().Header().Set(echo.HeaderLocation, "/connectors/"+url.PathEscape(name))
	}
	return connectJSON(c, status, s.infoAfterPut(name, raw))
}

// infoAfterPut is the answer to a config written: the connector as this node now has it.
func (s *Server) infoAfterPut(name string, raw map[string]string) connectorInfo {
	info := connectorInfo{Name: name, Config: s.shown(name, raw), Tasks: []taskID{}, Type: string(s.plugins.Type(raw))}
	if cn, ok := s.cl.Connector(name); ok {
		info.Tasks = s.infoOf(cn).Tasks
	}
	return info
}

// patchConfig is PATCH /connectors/{name}/config: the body's keys are merged into the stored
// config, a key whose value is null removed, and the result validated and stored as PUT would
// (a [hidden] sent back keeps the stored secret). The connector must exist (404).
func (s *Server) patchConfig(c echo.Context) error {
	cn, err := s.connector(c)
	if err != nil {
		return err
	}
	data, err := readAll(c)
	if err != nil {
		return err
	}
	var patch map[string]json.RawMessage
	if err := json.Unmarshal(data, &patch); err != nil || patch == nil {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "request body is not a config object: send {\"key\": \"value\", ...}, null to remove a key")
	}
	set := map[string]json.RawMessage{}
	merged := maps.Clone(cn.Config)
	for key, v := range patch {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(merged, key)
			continue
		}
		set[key] = v
	}
	setJSON, err := json.Marshal(set)
	if err != nil {
		return err
	}
	values, err := connector.ConfigFromJSON(setJSON)
	if err != nil {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "%s", err.Error())
	}
	maps.Copy(merged, values)
	raw, err := s.validateConfig(cn.Name, merged, cn.Config)
	if err != nil {
		return err
	}
	if _, err := s.cl.PutConnectorConfig(c.Request().Context(), cn.Name, raw); err != nil {
		return err
	}
	return connectJSON(c, http.StatusOK, s.infoAfterPut(cn.Name, raw))
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
	return connectJSON(c, http.StatusOK, listedStatus(st))
}

// listedStatus is a status as it is shown: a STOPPED connector lists no tasks (listedTasks).
func listedStatus(st ConnectorStatus) ConnectorStatus {
	if st.Connector.State == StateStopped || st.Tasks == nil {
		st.Tasks = []TaskStatus{}
	}
	return st
}

func (s *Server) taskStatus(c echo.Context) error {
	name := nameParam(c)
	id, err := strconv.Atoi(c.Param("id"))
	if err != nil {
		return jsonerr.New(http.StatusNotFound, http.StatusNotFound, "Task %s of connector %s not found", c.Param("id"), name)
	}
	st, err := s.cl.ConnectorStatus(c.Request().Context(), name)
	if errors.Is(err, ErrNotFound) {
		return notFound(name)
	}
	if err != nil {
		return err
	}
	for _, t := range listedStatus(st).Tasks {
		if t.ID == id {
			return connectJSON(c, http.StatusOK, t)
		}
	}
	return jsonerr.New(http.StatusNotFound, http.StatusNotFound, "Task %d of connector %s not found", id, name)
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
	base := s.shown(cn.Name, cn.Config)
	out := []taskInfo{}
	for _, t := range listedTasks(cn) {
		cfg := maps.Clone(base)
		maps.Copy(cfg, t.Config)
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

// restart is POST /connectors/{name}/restart?includeTasks=&onlyFailed=, as Kafka Connect
// answers it: without either flag the connector restarts (it lists its tasks again) and the
// answer is 204. With either, the connector restarts unless onlyFailed and it is not FAILED,
// with includeTasks its tasks do too (only the FAILED ones with onlyFailed), and the answer
// is 202 with the connector's status, what restarts shown RESTARTING.
func (s *Server) restart(c echo.Context) error {
	name := nameParam(c)
	includeTasks, onlyFailed := queryBool(c, "includeTasks"), queryBool(c, "onlyFailed")
	ctx := c.Request().Context()
	if !includeTasks && !onlyFailed {
		if err := s.cl.RestartConnector(ctx, name); err != nil {
			if errors.Is(err, ErrNotFound) {
				return notFound(name)
			}
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
	st, err := s.cl.ConnectorStatus(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return notFound(name)
	}
	if err != nil {
		return err
	}
	st = listedStatus(st)
	restarts := func(state string) bool { return !onlyFailed || state == StateFailed }
	if restarts(st.Connector.State) {
		if err := s.cl.RestartConnector(ctx, name); err != nil {
			return err
		}
		st.Connector.State = StateRestarting
	}
	var ids []int
	st.Tasks = slices.Clone(st.Tasks)
	for i, t := range st.Tasks {
		if includeTasks && restarts(t.State) {
			ids = append(ids, t.ID)
			st.Tasks[i].State = StateRestarting
		}
	}
	if err := s.cl.RestartTasks(ctx, name, ids); err != nil {
		return err
	}
	return connectJSON(c, http.StatusAccepted, st)
}

func (s *Server) restartTask(c echo.Context) error {
	name := nameParam(c)
	id, err := strconv.Atoi(c.Param("id"))
	if err != nil {
		return jsonerr.New(http.StatusNotFound, http.StatusNotFound, "Task %s of connector %s not found", c.Param("id"), name)
	}
	if err := s.cl.RestartTasks(c.Request().Context(), name, []int{id}); err != nil {
		if errors.Is(err, ErrNotFound) {
			return jsonerr.New(http.StatusNotFound, http.StatusNotFound, "%s", err.Error())
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

// jsonBody wraps the handler of every route that takes a body: a body sent as anything but
// application/json is refused with 415, as Kafka Connect refuses it.
func jsonBody(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ct := c.Request().Header.Get(echo.HeaderContentType)
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationJSON {
			return jsonerr.New(http.StatusUnsupportedMediaType, http.StatusUnsupportedMediaType,
				"Content-Type %q is not supported: send the body as application/json", ct)
		}
		return h(c)
	}
}

// topicsInfo is Connect's ActiveTopicsInfo, keyed by the connector's name.
type topicsInfo struct {
	Topics []string `json:"topics"`
}

// topics is GET /connectors/{name}/topics: the topics the connector's tasks write, as their
// kind names them from the connector's config and each task's work (for the mongodb source,
// <topic.prefix>.<db>.<collection> of every collection shard it captures). Where Kafka Connect
// records the topics its tasks have written since the last reset, this is the set its current
// tasks write, kept while it is STOPPED; a kind that cannot say is answered 403, as Connect
// answers while topic tracking is off.
func (s *Server) topics(c echo.Context) error {
	cn, err := s.connector(c)
	if err != nil {
		return err
	}
	specs := make([]taskid.Spec, 0, len(cn.Tasks))
	for _, t := range cn.Tasks {
		specs = append(specs, t.Spec)
	}
	topics, err := s.plugins.Topics(cn.Name, cn.Config, specs)
	if errors.Is(err, connector.ErrNoTopics) {
		return jsonerr.New(http.StatusForbidden, http.StatusForbidden, "%s", err.Error())
	}
	if err != nil {
		return err
	}
	if topics == nil {
		topics = []string{}
	}
	return connectJSON(c, http.StatusOK, map[string]topicsInfo{cn.Name: {Topics: topics}})
}

// resetTopics is PUT /connectors/{name}/topics/reset, answered 202 as in Kafka Connect. The
// set GET .../topics shows is derived from the connector's current tasks, never from what
// they wrote before, so it holds no stale topic and a reset has nothing to clear.
func (s *Server) resetTopics(c echo.Context) error {
	if _, err := s.connector(c); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}
