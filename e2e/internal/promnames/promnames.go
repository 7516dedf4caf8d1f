// Package promnames finds the metric names a PromQL expression, or a Grafana dashboard's
// queries, read: enough of PromQL to check a dashboard against what an endpoint exports,
// without a PromQL parser.
package promnames

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var (
	// strings, label matchers, ranges and grouping clauses name no metric.
	quoted   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	braces   = regexp.MustCompile(`\{[^{}]*\}`)
	brackets = regexp.MustCompile(`\[[^\[\]]*\]`)
	grouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	// labelValues is Grafana's label_values(metric, label): only its first argument is a metric.
	// numbers and durations (0.99, 5m, 1e3) end in letters that are no metric either.
	numbers     = regexp.MustCompile(`\b[0-9][0-9a-zA-Z_.]*`)
	labelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	identifier  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
)

// keywords are PromQL's words that are not metrics.
var keywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true,
}

// Metrics returns the metric names expr reads, sorted, without repeats.
func Metrics(expr string) []string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	s := quoted.ReplaceAllString(expr, " ")
	for braces.MatchString(s) {
		s = braces.ReplaceAllString(s, " ")
	}
	s = brackets.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	s = numbers.ReplaceAllString(s, " ")
	var out []string
	for _, m := range identifier.FindAllStringSubmatch(s, -1) {
		name := m[0]
		if m[1] != "" || keywords[strings.ToLower(name)] { // a function call, or a keyword
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Dashboard returns every query of a Grafana dashboard JSON (its panels', nested rows'
// included, and its template variables'), each with the metrics it reads.
func Dashboard(data []byte) (map[string][]string, error) {
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("read the dashboard: %w", err)
	}
	out := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if t.Expr != "" {
					out[t.Expr] = Metrics(t.Expr)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil {
			_ = json.Unmarshal(v.Query, &q.Query) // the older form: the query as a string
		}
		if q.Query != "" {
			out[q.Query] = Metrics(q.Query)
		}
	}
	return out, nil
}

type panel struct {
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}
