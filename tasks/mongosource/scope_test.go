package mongosource

import (
	"slices"
	"testing"

	"github.com/mongorelay/mongorelay/tasks/config"
)

// TestScopeUnitsAreWhatOneStreamWatches: collections with capture.scope=collection, each
// database that has a captured collection with database, the deployment (even empty) with
// deployment.
func TestScopeUnitsAreWhatOneStreamWatches(t *testing.T) {
	nss := []namespace{{"crm", "people"}, {"shop", "items"}, {"shop", "orders"}}
	tests := []struct {
		scope config.CaptureScope
		in    []namespace
		want  []namespace
	}{
		{config.ScopeCollection, nss, nss},
		{config.ScopeDatabase, nss, []namespace{{"crm", "*"}, {"shop", "*"}}},
		{config.ScopeDatabase, nil, nil},
		{config.ScopeDeployment, nss, []namespace{{"*", "*"}}},
		{config.ScopeDeployment, nil, []namespace{{"*", "*"}}},
	}
	for _, tt := range tests {
		if got := scopeUnits(tt.scope, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s of %v: %v, want %v", tt.scope, tt.in, got, tt.want)
		}
	}
}
