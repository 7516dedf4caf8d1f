package config

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestScopeStagesFilterOnTheServerAsIncludesDoes: the stages compute "<db>.<collection>",
// match it against the collection lists' anchored case-insensitive expressions (and the
// database lists against ns.db), leave out system collections, and the internal databases
// where the stream is the deployment's; then remove the computed field.
func TestScopeStagesFilterOnTheServerAsIncludesDoes(t *testing.T) {
	tests := []struct {
		name   string
		raw    map[string]string
		db     string
		want   []string // in the $match, as extended JSON fragments
		absent []string
	}{
		{"database scope, an include list", with("collection.include.list", `shop\.(orders|people)`), "shop",
			[]string{`"__mongorelay_ns":{"$regex":"(?i)^(?:shop\\.(orders|people))$"}`, `"$or"`, `"^system\\."`},
			[]string{`"$nin":["admin","config","local"]`, `"$nor":[{"__mongorelay_ns"`}},
		{"deployment scope, exclude lists", with("database.exclude.list", "tmp.*", "collection.exclude.list", `.*\.cache`), "",
			[]string{`"ns.db":{"$nin":["admin","config","local"]}`, `"$nor":[{"ns.db":{"$regex":"(?i)^(?:tmp.*)$"}}]`,
				`"$nor":[{"__mongorelay_ns":{"$regex":"(?i)^(?:.*\\.cache)$"}}]`},
			[]string{`"$or"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := mustParse(t, tt.raw).ScopeStages(tt.db)
			if len(stages) != 3 || stages[0][0].Key != "$addFields" || stages[1][0].Key != "$match" || stages[2][0].Key != "$unset" {
				t.Fatalf("stages = %v, want $addFields, $match, $unset", stages)
			}
			js, err := bson.MarshalExtJSON(stages[1], false, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(js), w) {
					t.Errorf("$match %s lacks %s", js, w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(string(js), a) {
					t.Errorf("$match %s has %s", js, a)
				}
			}
		})
	}
}

// TestCaptureScopeRefusesWhatItCannotDo: copying a scope again after its history was lost is
// not built, so the keys that ask for it are refused with a scope, accepted without.
func TestCaptureScopeRefusesWhatItCannotDo(t *testing.T) {
	tests := []struct {
		name    string
		raw     map[string]string
		refused string
	}{
		{"database scope", with("capture.scope", "database"), ""},
		{"deployment scope", with("capture.scope", "DEPLOYMENT"), ""},
		{"resnapshot on loss", with("capture.scope", "database", "offset.lost.policy", "resnapshot"), "offset.lost.policy"},
		{"snapshot when needed", with("capture.scope", "deployment", "snapshot.mode", "when_needed"), "snapshot.mode"},
		{"collection scope resnapshots", with("offset.lost.policy", "resnapshot"), ""},
		{"an unknown scope", with("capture.scope", "cluster"), "capture.scope"},
		{"a signal collection", with("capture.scope", "database", "signal.data.collection", "shop.signals"), "signal.data.collection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c", tt.raw)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.refused) {
				t.Fatalf("err = %v, want a problem with %s", err, tt.refused)
			}
		})
	}
}
