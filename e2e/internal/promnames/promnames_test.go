package promnames

import (
	"slices"
	"testing"
)

func TestMetrics(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (connector, task) (rate(debezium_metrics_TotalNumberOfEventsSeen{context="streaming",connector=~"$connector"}[$__rate_interval]))`,
			[]string{"debezium_metrics_TotalNumberOfEventsSeen"}},
		{`max by (node, state) (mongorelay_raft_state) > 0`, []string{"mongorelay_raft_state"}},
		{`a_total / on(job) group_left(instance) b_seconds offset 5m`, []string{"a_total", "b_seconds"}},
		{`histogram_quantile(0.99, sum without (le) (rate(x_bucket{a="by (b)"}[1m])))`, []string{"x_bucket"}},
		{`label_values(debezium_metrics_Connected, connector)`, []string{"debezium_metrics_Connected"}},
		{`process_cpu_seconds_total and bool go_goroutines unless Inf`, []string{"go_goroutines", "process_cpu_seconds_total"}},
	}
	for _, tt := range tests {
		if got := Metrics(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("Metrics(%s) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

func TestDashboardFindsNestedAndTemplateQueries(t *testing.T) {
	data := []byte(`{"panels": [{"targets": [{"expr": "rate(a_total[1m])"}]},
		{"type": "row", "panels": [{"targets": [{"expr": "b"}, {"expr": ""}]}]}],
		"templating": {"list": [{"query": {"query": "label_values(c, x)"}}, {"query": "label_values(d, y)"}]}}`)
	got, err := Dashboard(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rate(a_total[1m])": "a_total", "b": "b", "label_values(c, x)": "c", "label_values(d, y)": "d"}
	if len(got) != len(want) {
		t.Fatalf("queries %v, want %v", got, want)
	}
	for q, m := range want {
		if !slices.Equal(got[q], []string{m}) {
			t.Errorf("%s reads %v, want [%s]", q, got[q], m)
		}
	}
}
