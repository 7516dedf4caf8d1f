package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
	"github.com/mongorelay/mongorelay/tasks/connector"
)

// The connector kinds as Kafka Connect's ConnectorPluginsResource shows them: GET
// /connector-plugins, GET /connector-plugins/{plugin}/config and PUT
// /connector-plugins/{plugin}/config/validate, all from the kinds' own config tables
// (connector.ConfigKey), answered by any node from what it was built with.

// pluginInfo is Connect's PluginInfo.
type pluginInfo struct {
	Class   string `json:"class"`
	Type    string `json:"type"`
	Version string `json:"version"`
}

// listPlugins is GET /connector-plugins?connectorsOnly=: the kinds, by their class. The
// binary has no converters, transformations or predicates as plugins, so connectorsOnly=false
// lists the same.
func (s *Server) listPlugins(c echo.Context) error {
	out := []pluginInfo{}
	for _, d := range s.plugins.Describe() {
		out = append(out, pluginInfo{Class: d.Plugin.Class, Type: string(d.Plugin.Type), Version: s.versionOf(d.Plugin)})
	}
	return connectJSON(c, http.StatusOK, out)
}

// versionOf is a kind's version: its own, else the binary's, which it is compiled into.
func (s *Server) versionOf(p connector.Plugin) string {
	if p.Version != "" {
		return p.Version
	}
	return s.cl.Info().Version
}

// plugin is the kind the path's {plugin} names: its class, an alias, or either's simple name
// (the part after the last dot), as Connect accepts; 404 when none.
func (s *Server) plugin(c echo.Context) (connector.Description, error) {
	name := c.Param("plugin")
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	for _, d := range s.plugins.Describe() {
		if namesPlugin(d.Plugin, name) {
			return d, nil
		}
	}
	return connector.Description{}, jsonerr.New(http.StatusNotFound, http.StatusNotFound, "Connector plugin %s not found", name)
}

func namesPlugin(p connector.Plugin, name string) bool {
	for _, class := range append([]string{p.Class}, p.Aliases...) {
		if name == class || name == class[strings.LastIndex(class, ".")+1:] {
			return true
		}
	}
	return false
}

// configKeyInfo is Connect's ConfigKeyInfo.
type configKeyInfo struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Required      bool     `json:"required"`
	DefaultValue  *string  `json:"default_value"`
	Importance    string   `json:"importance"`
	Documentation string   `json:"documentation"`
	Group         string   `json:"group"`
	Order         int      `json:"order"`
	Width         string   `json:"width"`
	DisplayName   string   `json:"display_name"`
	Dependents    []string `json:"dependents"`
}

func keyInfo(k connector.ConfigKey) configKeyInfo {
	out := configKeyInfo{Name: k.Name, Type: k.Type, Required: k.Required, Importance: k.Importance,
		Documentation: k.Documentation, Group: k.Group, Order: k.OrderInGroup, Width: k.Width, DisplayName: k.DisplayName,
		Dependents: k.Dependents}
	if k.Default != "" {
		out.DefaultValue = &k.Default
	}
	if out.Dependents == nil {
		out.Dependents = []string{}
	}
	return out
}

// pluginConfig is GET /connector-plugins/{plugin}/config: the kind's config keys.
func (s *Server) pluginConfig(c echo.Context) error {
	d, err := s.plugin(c)
	if err != nil {
		return err
	}
	out := make([]configKeyInfo, 0, len(d.Keys))
	for _, k := range d.Keys {
		out = append(out, keyInfo(k))
	}
	return connectJSON(c, http.StatusOK, out)
}

// configInfos is Connect's ConfigInfos, the answer to config/validate.
type configInfos struct {
	Name       string       `json:"name"`
	ErrorCount int          `json:"error_count"`
	Groups     []string     `json:"groups"`
	Configs    []configInfo `json:"configs"`
}

type configInfo struct {
	Definition configKeyInfo   `json:"definition"`
	Value      configValueInfo `json:"value"`
}

// configValueInfo is Connect's ConfigValueInfo: a key's value as given (redacted), else its
// default, and what is wrong with it.
type configValueInfo struct {
	Name              string   `json:"name"`
	Value             *string  `json:"value"`
	RecommendedValues []string `json:"recommended_values"`
	Errors            []string `json:"errors"`
	Visible           bool     `json:"visible"`
}

// validatePlugin is PUT /connector-plugins/{plugin}/config/validate: the config is checked
// with the kind's Validate, as POST /connectors would, and the answer is 200 with every key
// of the kind, its value and its errors, whether the config is valid or not. The config's
// connector.class, when given, must name the same kind (400); absent, it is the plugin's. A
// key the kind does not know is listed after the kind's keys, with its error. The connector
// name validated is the config's "name".
func (s *Server) validatePlugin(c echo.Context) error {
	d, err := s.plugin(c)
	if err != nil {
		return err
	}
	data, err := readAll(c)
	if err != nil {
		return err
	}
	raw, err := connector.ConfigFromJSON(data)
	if err != nil {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "%s", err.Error())
	}
	if class, ok := raw[connector.ClassKey]; !ok {
		raw[connector.ClassKey] = d.Plugin.Class
	} else if !namesPlugin(d.Plugin, strings.TrimSpace(class)) {
		return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest,
			"Included connector type %s does not match request type %s", class, c.Param("plugin"))
	}
	name := raw[nameKey]
	problems := map[string][]string{}
	var order []string // keys with problems, as reported
	if _, err := s.plugins.Validate(name, raw); err != nil {
		ve, ok := errors.AsType[*connector.ValidationError](err)
		if !ok {
			return jsonerr.New(http.StatusBadRequest, http.StatusBadRequest, "%s", err.Error())
		}
		for _, p := range ve.Problems {
			if _, seen := problems[p.Key]; !seen {
				order = append(order, p.Key)
			}
			problems[p.Key] = append(problems[p.Key], p.Message)
		}
	}
	shown := s.plugins.Redact(name, raw)
	out := configInfos{Name: d.Plugin.Class, Groups: []string{}, Configs: []configInfo{}}
	known := map[string]bool{}
	for _, k := range d.Keys {
		known[k.Name] = true
		if k.Group != "" && !slices.Contains(out.Groups, k.Group) {
			out.Groups = append(out.Groups, k.Group)
		}
		v := configValueInfo{Name: k.Name, RecommendedValues: k.ValidValues, Errors: problems[k.Name], Visible: true}
		if given, ok := shown[k.Name]; ok {
			v.Value = &given
		} else if k.Default != "" {
			v.Value = &k.Default
		}
		out.Configs = append(out.Configs, configInfo{Definition: keyInfo(k), Value: v})
	}
	for _, key := range order {
		if known[key] {
			continue
		}
		v := configValueInfo{Name: key, RecommendedValues: []string{}, Errors: problems[key], Visible: true}
		if given, ok := shown[key]; ok {
			v.Value = &given
		}
		def := keyInfo(connector.ConfigKey{Name: key, Type: "STRING", Importance: "LOW",
			Documentation: "not a config key of " + d.Plugin.Class, Width: "NONE", DisplayName: key})
		out.Configs = append(out.Configs, configInfo{Definition: def, Value: v})
	}
	for i := range out.Configs {
		v := &out.Configs[i].Value
		if v.RecommendedValues == nil {
			v.RecommendedValues = []string{}
		}
		if v.Errors == nil {
			v.Errors = []string{}
		}
		out.ErrorCount += len(v.Errors)
	}
	return connectJSON(c, http.StatusOK, out)
}
