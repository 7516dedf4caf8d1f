package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// tableName is the metric a row of a table in docs/metrics.md documents: its first cell.
var tableName = regexp.MustCompile("(?m)^\\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \\|")

// descName is the name in a Desc's string form: Desc{fqName: "name", ...}.
var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// TestDocsListEveryMetric: docs/metrics.md has a row for every metric the node's collectors
// describe, and no row for one they do not.
func TestDocsListEveryMetric(t *testing.T) {
	page, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range tableName.FindAllStringSubmatch(string(page), -1) {
		documented = append(documented, m[1])
	}
	ch := make(chan *prometheus.Desc, 100)
	(&taskCollector{}).Describe(ch)
	(&nodeCollector{}).Describe(ch)
	close(ch)
	var described []string
	for d := range ch {
		described = append(described, descName.FindStringSubmatch(d.String())[1])
	}
	slices.Sort(documented)
	slices.Sort(described)
	if !slices.Equal(documented, described) {
		t.Errorf("docs/metrics.md documents\n  %s\nthe collectors describe\n  %s", strings.Join(documented, " "), strings.Join(described, " "))
	}
}
