package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/registrytest"
)

// Avro schemas used across the tests: a record User in successive shapes.
const (
	userV1 = `{"type":"record","name":"User","fields":[
		{"name":"id","type":"long"},
		{"name":"name","type":"string"}]}`
	userOptionalEmail = `{"type":"record","name":"User","fields":[
		{"name":"id","type":"long"},
		{"name":"name","type":"string"},
		{"name":"email","type":["null","string"],"default":null}]}`
	userRequiredEmail = `{"type":"record","name":"User","fields":[
		{"name":"id","type":"long"},
		{"name":"name","type":"string"},
		{"name":"email","type":"string"}]}`
	userNoName = `{"type":"record","name":"User","fields":[
		{"name":"id","type":"long"}]}`
	countInt  = `{"type":"record","name":"Count","fields":[{"name":"n","type":"int"}]}`
	countLong = `{"type":"record","name":"Count","fields":[{"name":"n","type":"long"}]}`
	other     = `{"type":"record","name":"Other","fields":[{"name":"x","type":"boolean"}]}`
)

func newRegistry(t *testing.T, opts ...registry.Opt) (*registry.Registry, *registrytest.Store) {
	t.Helper()
	store := registrytest.NewStore()
	return reopen(t, store, opts...), store
}

func reopen(t *testing.T, store registry.Store, opts ...registry.Opt) *registry.Registry {
	t.Helper()
	opts = append([]registry.Opt{registry.Logger(slog.New(slog.DiscardHandler))}, opts...)
	r, err := registry.New(t.Context(), store, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func mustRegister(t *testing.T, r *registry.Registry, subject, schema string) int {
	t.Helper()
	id, err := r.Register(t.Context(), subject, schema)
	if err != nil {
		t.Fatalf("Register(%s): %v", subject, err)
	}
	return id
}

func TestRegisterAssignsIDsAndVersions(t *testing.T) {
	type step struct {
		subject, schema string
		wantID          int
		wantVersion     int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first schema gets id 1 version 1", []step{
			{"a-value", userV1, 1, 1},
		}},
		{"new versions get new ids", []step{
			{"a-value", userV1, 1, 1},
			{"a-value", userOptionalEmail, 2, 2},
		}},
		{"same schema under another subject keeps its id", []step{
			{"a-value", userV1, 1, 1},
			{"a-value", userOptionalEmail, 2, 2},
			{"b-value", userOptionalEmail, 2, 1},
			{"b-value", countInt, 3, 2},
		}},
		{"re-registering returns the existing id and version", []step{
			{"a-value", userV1, 1, 1},
			{"a-value", userOptionalEmail, 2, 2},
			{"a-value", userV1, 1, 1},
		}},
		{"formatting and key order do not matter", []step{
			{"a-value", `{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}`, 1, 1},
			{"a-value", `{"fields":[{"type":"long","name":"id"},{"name":"name","type":{"type":"string"}}], "name":"User","type":"record"}`, 1, 1},
		}},
		{"primitive schemas", []step{
			{"k-key", `"string"`, 1, 1},
			{"k-key", `{"type": "string"}`, 1, 1},
			{"l-key", `"string"`, 1, 1},
		}},
		{"a default tells schemas apart", []step{
			{"a-value", `{"type":"record","name":"R","fields":[{"name":"f","type":"int","default":1}]}`, 1, 1},
			{"a-value", `{"type":"record","name":"R","fields":[{"name":"f","type":"int","default":2}]}`, 2, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newRegistry(t, registry.DefaultCompatibility(registry.None))
			for i, s := range tt.steps {
				id := mustRegister(t, r, s.subject, s.schema)
				if id != s.wantID {
					t.Fatalf("step %d: id %d, want %d", i, id, s.wantID)
				}
				got, err := r.Lookup(s.subject, s.schema, false)
				if err != nil {
					t.Fatalf("step %d: Lookup: %v", i, err)
				}
				if got.Version != s.wantVersion || got.ID != s.wantID {
					t.Fatalf("step %d: version %d id %d, want version %d id %d", i, got.Version, got.ID, s.wantVersion, s.wantID)
				}
			}
		})
	}
}

func TestRegisterIsIdempotent(t *testing.T) {
	r, store := newRegistry(t)
	id := mustRegister(t, r, "s", userV1)
	before := len(store.Changes())
	for range 3 {
		if again := mustRegister(t, r, "s", userV1); again != id {
			t.Fatalf("id %d, want %d", again, id)
		}
	}
	if after := len(store.Changes()); after != before {
		t.Fatalf("re-registering wrote %d changes", after-before)
	}
	if vs, _ := r.Versions("s", false); !slices.Equal(vs, []int{1}) {
		t.Fatalf("versions %v, want [1]", vs)
	}
}

func TestCompatibilityLevels(t *testing.T) {
	// History v1 {f:int}, v2 {} then {f:string="x"}: compatible with the
	// latest version only, so only the transitive levels reject it.
	const (
		withF    = `{"type":"record","name":"T","fields":[{"name":"f","type":"int"}]}`
		withoutF = `{"type":"record","name":"T","fields":[]}`
		fString  = `{"type":"record","name":"T","fields":[{"name":"f","type":"string","default":"x"}]}`
		// Forward: v1 {a,b}, v2 {a,b="d"}, then {a}: v2 reads it (default), v1
		// cannot.
		ab        = `{"type":"record","name":"F","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}`
		abDefault = `{"type":"record","name":"F","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":"d"}]}`
		onlyA     = `{"type":"record","name":"F","fields":[{"name":"a","type":"int"}]}`
	)
	tests := []struct {
		name      string
		level     registry.Compatibility // "" = registry default
		history   []string
		candidate string
		wantOK    bool
	}{
		{"backward: add optional field with null default", registry.Backward, []string{userV1}, userOptionalEmail, true},
		{"backward: add required field", registry.Backward, []string{userV1}, userRequiredEmail, false},
		{"backward: remove field without default", registry.Backward, []string{userV1}, userNoName, true},
		{"backward: widen int to long", registry.Backward, []string{countInt}, countLong, true},
		{"backward: narrow long to int", registry.Backward, []string{countLong}, countInt, false},
		{"backward: other record", registry.Backward, []string{userV1}, other, false},
		{"forward: add optional field", registry.Forward, []string{userV1}, userOptionalEmail, true},
		{"forward: remove field without default", registry.Forward, []string{userV1}, userNoName, false},
		{"forward: widen int to long", registry.Forward, []string{countInt}, countLong, false},
		{"full: add optional field", registry.Full, []string{userV1}, userOptionalEmail, true},
		{"full: remove field without default", registry.Full, []string{userV1}, userNoName, false},
		{"full: widen int to long", registry.Full, []string{countInt}, countLong, false},
		{"none: anything goes", registry.None, []string{userV1}, other, true},
		{"backward checks the latest only", registry.Backward, []string{withF, withoutF}, fString, true},
		{"backward transitive checks every version", registry.BackwardTransitive, []string{withF, withoutF}, fString, false},
		{"default level is backward transitive", "", []string{withF, withoutF}, fString, false},
		{"forward checks the latest only", registry.Forward, []string{ab, abDefault}, onlyA, true},
		{"forward transitive checks every version", registry.ForwardTransitive, []string{ab, abDefault}, onlyA, false},
		{"full checks the latest only", registry.Full, []string{withF, withoutF}, fString, true},
		{"full transitive checks every version", registry.FullTransitive, []string{withF, withoutF}, fString, false},
		{"backward transitive: add optional fields one by one", registry.BackwardTransitive,
			[]string{userV1, userOptionalEmail}, `{"type":"record","name":"User","fields":[
				{"name":"id","type":"long"},{"name":"name","type":"string"},
				{"name":"email","type":["null","string"],"default":null},
				{"name":"age","type":["null","int"],"default":null}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newRegistry(t)
			ctx := t.Context()
			if err := r.SetCompatibility(ctx, "s", registry.None); err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.history {
				mustRegister(t, r, "s", h)
			}
			if tt.level == "" {
				if _, err := r.DeleteCompatibility(ctx, "s"); err != nil {
					t.Fatal(err)
				}
			} else if err := r.SetCompatibility(ctx, "s", tt.level); err != nil {
				t.Fatal(err)
			}

			msgs, err := r.CheckCompatibility("s", tt.candidate, registry.AllVersions)
			if err != nil {
				t.Fatalf("CheckCompatibility: %v", err)
			}
			if ok := len(msgs) == 0; ok != tt.wantOK {
				t.Fatalf("CheckCompatibility compatible=%v (%v), want %v", ok, msgs, tt.wantOK)
			}

			_, err = r.Register(ctx, "s", tt.candidate)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
				return
			}
			var ie *registry.IncompatibleError
			if !errors.Is(err, registry.ErrIncompatible) || !errors.As(err, &ie) || len(ie.Messages) == 0 {
				t.Fatalf("Register error %v, want an IncompatibleError", err)
			}
			if vs, _ := r.Versions("s", true); len(vs) != len(tt.history) {
				t.Fatalf("a rejected schema created a version: %v", vs)
			}
		})
	}
}

func TestCompatibilityIgnoresSoftDeletedVersions(t *testing.T) {
	r, _ := newRegistry(t, registry.DefaultCompatibility(registry.Backward))
	mustRegister(t, r, "s", countLong)
	if _, err := r.DeleteVersion(t.Context(), "s", 1, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(t.Context(), "s", countInt); err != nil {
		t.Fatalf("Register after soft delete: %v", err)
	}
}

func TestCheckCompatibilityAgainstOneVersion(t *testing.T) {
	r, _ := newRegistry(t, registry.DefaultCompatibility(registry.Backward))
	mustRegister(t, r, "s", countInt)
	mustRegister(t, r, "s", countLong)
	tests := []struct {
		name    string
		subject string
		version int
		schema  string
		wantOK  bool
		wantErr error
	}{
		{"latest accepts long", "s", registry.LatestVersion, countLong, true, nil},
		{"latest rejects int", "s", registry.LatestVersion, countInt, false, nil},
		{"version 1 accepts int", "s", 1, countInt, true, nil},
		{"missing version", "s", 9, countInt, false, registry.ErrVersionNotFound},
		{"latest of a new subject accepts anything", "new", registry.LatestVersion, other, true, nil},
		{"version of a new subject", "new", 1, other, false, registry.ErrVersionNotFound},
		{"invalid schema", "s", 1, `{"type":"nope"}`, false, registry.ErrInvalidSchema},
		{"invalid version", "s", -7, countInt, false, registry.ErrInvalidVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := r.CheckCompatibility(tt.subject, tt.schema, tt.version)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok := len(msgs) == 0; ok != tt.wantOK {
				t.Fatalf("compatible=%v (%v), want %v", ok, msgs, tt.wantOK)
			}
		})
	}
}

func TestInvalidSchemas(t *testing.T) {
	tests := []struct{ name, schema string }{
		{"not JSON", `{"type":`},
		{"trailing data", `"string" "int"`},
		{"unknown type", `{"type":"record","name":"R","fields":[{"name":"f","type":"nope"}]}`},
		{"record without fields", `{"type":"record","name":"R"}`},
		{"bad name", `{"type":"record","name":"1R","fields":[]}`},
		{"default of the wrong type", `{"type":"record","name":"R","fields":[{"name":"f","type":"int","default":"x"}]}`},
		{"empty", ``},
	}
	r, _ := newRegistry(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.Register(t.Context(), "s", tt.schema); !errors.Is(err, registry.ErrInvalidSchema) {
				t.Fatalf("Register error %v, want ErrInvalidSchema", err)
			}
		})
	}
}

func TestCheckSchemaType(t *testing.T) {
	for _, typ := range []string{"", "AVRO", "avro"} {
		if err := registry.CheckSchemaType(typ); err != nil {
			t.Errorf("CheckSchemaType(%q): %v", typ, err)
		}
	}
	for _, typ := range []string{"PROTOBUF", "JSON", "XML"} {
		if err := registry.CheckSchemaType(typ); !errors.Is(err, registry.ErrInvalidSchema) {
			t.Errorf("CheckSchemaType(%q) = %v, want ErrInvalidSchema", typ, err)
		}
	}
}

// TestDeletes walks Confluent's delete rules: soft before hard, version
// numbers kept by soft deletes, ids readable until the last version using
// them is hard-deleted, and never reused.
func TestDeletes(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := t.Context()
	wantErr := func(err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("error %v, want %v", err, want)
		}
	}
	wantVersions := func(deleted bool, want ...int) {
		t.Helper()
		got, err := r.Versions("s", deleted)
		if len(want) == 0 {
			wantErr(err, registry.ErrSubjectNotFound)
			return
		}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("Versions(deleted=%v) = %v, %v; want %v", deleted, got, err, want)
		}
	}

	id1 := mustRegister(t, r, "s", userV1)
	id2 := mustRegister(t, r, "s", userOptionalEmail)

	_, err := r.DeleteVersion(ctx, "s", 1, true)
	wantErr(err, registry.ErrVersionNotSoftDeleted)
	if v, err := r.DeleteVersion(ctx, "s", 1, false); err != nil || v != 1 {
		t.Fatalf("soft delete version 1: %d, %v", v, err)
	}
	_, err = r.DeleteVersion(ctx, "s", 1, false)
	wantErr(err, registry.ErrVersionSoftDeleted)
	wantVersions(false, 2)
	wantVersions(true, 1, 2)
	_, err = r.Version("s", 1, false)
	wantErr(err, registry.ErrVersionNotFound)
	if got, err := r.Version("s", 1, true); err != nil || !got.Deleted || got.ID != id1 {
		t.Fatalf("Version(1, deleted) = %+v, %v", got, err)
	}
	if _, err := r.SchemaByID(ctx, id1); err != nil {
		t.Fatalf("a soft-deleted schema must stay readable by id: %v", err)
	}

	if v, err := r.DeleteVersion(ctx, "s", 1, true); err != nil || v != 1 {
		t.Fatalf("hard delete version 1: %d, %v", v, err)
	}
	wantVersions(true, 2)
	_, err = r.SchemaByID(ctx, id1)
	wantErr(err, registry.ErrSchemaNotFound)
	_, err = r.DeleteVersion(ctx, "s", 1, false)
	wantErr(err, registry.ErrVersionNotFound)
	_, err = r.DeleteVersion(ctx, "s", 0, false)
	wantErr(err, registry.ErrInvalidVersion)

	_, err = r.DeleteSubject(ctx, "s", true)
	wantErr(err, registry.ErrSubjectNotSoftDeleted)
	if vs, err := r.DeleteSubject(ctx, "s", false); err != nil || !slices.Equal(vs, []int{2}) {
		t.Fatalf("soft delete subject: %v, %v", vs, err)
	}
	_, err = r.DeleteSubject(ctx, "s", false)
	wantErr(err, registry.ErrSubjectSoftDeleted)
	if got := r.Subjects(false); len(got) != 0 {
		t.Fatalf("Subjects() = %v after soft delete", got)
	}
	if got := r.Subjects(true); !slices.Equal(got, []string{"s"}) {
		t.Fatalf("Subjects(deleted) = %v", got)
	}
	_, err = r.Latest(ctx, "s")
	wantErr(err, registry.ErrSubjectNotFound)

	// Re-registering a soft-deleted schema: same id, the next version number,
	// and the soft-deleted copy goes, as in Confluent.
	if id := mustRegister(t, r, "s", userOptionalEmail); id != id2 {
		t.Fatalf("re-registered id %d, want %d", id, id2)
	}
	wantVersions(true, 3)

	if _, err := r.DeleteSubject(ctx, "s", false); err != nil {
		t.Fatal(err)
	}
	if vs, err := r.DeleteSubject(ctx, "s", true); err != nil || !slices.Equal(vs, []int{3}) {
		t.Fatalf("hard delete subject: %v, %v", vs, err)
	}
	wantVersions(true)
	_, err = r.DeleteSubject(ctx, "s", false)
	wantErr(err, registry.ErrSubjectNotFound)

	// After a hard delete versions restart at 1, and ids are not reused.
	id := mustRegister(t, r, "s", userOptionalEmail)
	if id <= id2 {
		t.Fatalf("id %d reused after hard delete (highest so far %d)", id, id2)
	}
	wantVersions(false, 1)
}

func TestLookup(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := t.Context()
	mustRegister(t, r, "s", userV1)
	mustRegister(t, r, "s", userOptionalEmail)
	if _, err := r.DeleteVersion(ctx, "s", 1, false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		subject     string
		schema      string
		deleted     bool
		wantVersion int
		wantErr     error
	}{
		{"live version", "s", userOptionalEmail, false, 2, nil},
		{"soft-deleted version hidden", "s", userV1, false, 0, registry.ErrSchemaNotFound},
		{"soft-deleted version with deleted", "s", userV1, true, 1, nil},
		{"unknown schema", "s", countInt, false, 0, registry.ErrSchemaNotFound},
		{"unknown subject", "t", userV1, false, 0, registry.ErrSubjectNotFound},
		{"invalid schema", "s", `{`, false, 0, registry.ErrInvalidSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Lookup(tt.subject, tt.schema, tt.deleted)
			if !errors.Is(err, tt.wantErr) || (err == nil && got.Version != tt.wantVersion) {
				t.Fatalf("Lookup = %+v, %v; want version %d, %v", got, err, tt.wantVersion, tt.wantErr)
			}
		})
	}
}

func TestVersionsByID(t *testing.T) {
	r, _ := newRegistry(t, registry.DefaultCompatibility(registry.None))
	id := mustRegister(t, r, "b", userV1)
	mustRegister(t, r, "a", countInt)
	mustRegister(t, r, "a", userV1)
	got, err := r.VersionsByID(id, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []registry.Schema{{Subject: "a", Version: 2, ID: id}, {Subject: "b", Version: 1, ID: id}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Subject != want[i].Subject || got[i].Version != want[i].Version || got[i].ID != id {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	if _, err := r.VersionsByID(99, false); !errors.Is(err, registry.ErrSchemaNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestCompatibilityConfig(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := t.Context()
	global := func(want registry.Compatibility) {
		t.Helper()
		if got, err := r.Compatibility(""); err != nil || got != want {
			t.Fatalf("global level %q, %v; want %q", got, err, want)
		}
	}
	global(registry.BackwardTransitive)
	if _, err := r.Compatibility("s"); !errors.Is(err, registry.ErrCompatibilityNotConfigured) {
		t.Fatalf("unset subject level: %v", err)
	}
	if err := r.SetCompatibility(ctx, "s", registry.Full); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Compatibility("s"); got != registry.Full {
		t.Fatalf("subject level %q", got)
	}
	if len(r.Subjects(true)) != 0 {
		t.Fatal("a level alone must not make a subject exist")
	}
	if err := r.SetCompatibility(ctx, "", registry.None); err != nil {
		t.Fatal(err)
	}
	global(registry.None)
	if err := r.SetCompatibility(ctx, "", "SIDEWAYS"); !errors.Is(err, registry.ErrInvalidCompatibility) {
		t.Fatalf("invalid level: %v", err)
	}
	if prev, err := r.DeleteCompatibility(ctx, ""); err != nil || prev != registry.None {
		t.Fatalf("delete global: %q, %v", prev, err)
	}
	global(registry.BackwardTransitive)
	if prev, err := r.DeleteCompatibility(ctx, "s"); err != nil || prev != registry.Full {
		t.Fatalf("delete subject level: %q, %v", prev, err)
	}
	if _, err := r.DeleteCompatibility(ctx, "s"); !errors.Is(err, registry.ErrCompatibilityNotConfigured) {
		t.Fatalf("delete unset level: %v", err)
	}

	// A subject's level goes with a hard delete of the subject.
	mustRegister(t, r, "s", userV1)
	if err := r.SetCompatibility(ctx, "s", registry.Forward); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "s", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Compatibility("s"); got != registry.Forward {
		t.Fatalf("soft delete dropped the level: %q", got)
	}
	if _, err := r.DeleteSubject(ctx, "s", true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Compatibility("s"); !errors.Is(err, registry.ErrCompatibilityNotConfigured) {
		t.Fatalf("hard delete kept the level: %v", err)
	}
}

func TestParseCompatibility(t *testing.T) {
	for in, want := range map[string]registry.Compatibility{
		"NONE": registry.None, "backward": registry.Backward, "Full_Transitive": registry.FullTransitive,
	} {
		if got, err := registry.ParseCompatibility(in); err != nil || got != want {
			t.Errorf("ParseCompatibility(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := registry.ParseCompatibility("bogus"); !errors.Is(err, registry.ErrInvalidCompatibility) {
		t.Errorf("bogus: %v", err)
	}
	if _, err := registry.New(t.Context(), registrytest.NewStore(), registry.DefaultCompatibility("bogus")); !errors.Is(err, registry.ErrInvalidCompatibility) {
		t.Errorf("New with a bogus default: %v", err)
	}
}

// TestRestart checks that a registry rebuilt from its store, compacted or
// not, answers as the original did and does not reuse ids.
func TestRestart(t *testing.T) {
	r, store := newRegistry(t)
	ctx := t.Context()
	idA := mustRegister(t, r, "a", userV1)
	idB := mustRegister(t, r, "a", userOptionalEmail)
	idC := mustRegister(t, r, "c", countInt)
	if err := r.SetCompatibility(ctx, "a", registry.Full); err != nil {
		t.Fatal(err)
	}
	if err := r.SetCompatibility(ctx, "", registry.Forward); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteVersion(ctx, "a", 1, false); err != nil {
		t.Fatal(err)
	}
	// c's schema has the highest id; hard-deleting it must not free the id.
	if _, err := r.DeleteSubject(ctx, "c", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "c", true); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, r *registry.Registry) {
		t.Helper()
		if vs, _ := r.Versions("a", true); !slices.Equal(vs, []int{1, 2}) {
			t.Fatalf("versions %v", vs)
		}
		if v, err := r.Version("a", 1, true); err != nil || !v.Deleted || v.ID != idA {
			t.Fatalf("version 1: %+v, %v", v, err)
		}
		if l, err := r.Latest(ctx, "a"); err != nil || l.ID != idB || l.Version != 2 {
			t.Fatalf("latest: %+v, %v", l, err)
		}
		if got, _ := r.Compatibility("a"); got != registry.Full {
			t.Fatalf("subject level %q", got)
		}
		if got, _ := r.Compatibility(""); got != registry.Forward {
			t.Fatalf("global level %q", got)
		}
		if _, err := r.SchemaByID(ctx, idC); !errors.Is(err, registry.ErrSchemaNotFound) {
			t.Fatalf("hard-deleted id: %v", err)
		}
		if got := r.Subjects(true); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("subjects %v", got)
		}
	}
	check(t, r)
	t.Run("replayed", func(t *testing.T) { check(t, reopen(t, store)) })
	store.Compact()
	t.Run("compacted", func(t *testing.T) {
		r := reopen(t, store)
		check(t, r)
		if id := mustRegister(t, r, "d", other); id != idC+1 {
			t.Fatalf("next id %d, want %d", id, idC+1)
		}
	})
}

func TestStoreFailure(t *testing.T) {
	r, store := newRegistry(t)
	ctx := t.Context()
	boom := errors.New("broker gone")
	store.FailNext(boom)
	if _, err := r.Register(ctx, "s", userV1); !errors.Is(err, boom) {
		t.Fatalf("Register error %v, want %v", err, boom)
	}
	if _, err := r.Latest(ctx, "s"); !errors.Is(err, registry.ErrSubjectNotFound) {
		t.Fatalf("a failed write was applied: %v", err)
	}
	if id := mustRegister(t, r, "s", userV1); id != 1 {
		t.Fatalf("id %d after a failed write, want 1", id)
	}
}

// landedStore records changes but reports failure, as a write that times
// out after the broker took it would.
type landedStore struct {
	*registrytest.Store
	fail bool
}

func (s *landedStore) Append(ctx context.Context, changes ...registry.Change) error {
	if err := s.Store.Append(ctx, changes...); err != nil {
		return err
	}
	if s.fail {
		s.fail = false
		return errors.New("timed out waiting for the ack")
	}
	return nil
}

func TestReloadAfterUncertainWrite(t *testing.T) {
	store := &landedStore{Store: registrytest.NewStore()}
	r := reopen(t, store)
	store.fail = true
	if _, err := r.Register(t.Context(), "s", userV1); err == nil {
		t.Fatal("Register succeeded")
	}
	// The write landed: the registry must find it rather than hand out id 2.
	if id := mustRegister(t, r, "s", userOptionalEmail); id != 2 {
		t.Fatalf("id %d, want 2", id)
	}
	if vs, _ := r.Versions("s", false); !slices.Equal(vs, []int{1, 2}) {
		t.Fatalf("versions %v", vs)
	}
}

func TestConcurrentRegistration(t *testing.T) {
	r, _ := newRegistry(t, registry.DefaultCompatibility(registry.None))
	ctx := t.Context()
	schemas := make([]string, 20)
	for i := range schemas {
		schemas[i] = fmt.Sprintf(`{"type":"record","name":"R%d","fields":[]}`, i)
	}
	var mu sync.Mutex
	ids := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i, s := range schemas {
				subject := fmt.Sprintf("subject-%d", (g+i)%3)
				id, err := r.Register(ctx, subject, s)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := r.SchemaByID(ctx, id); err != nil {
					t.Error(err)
				} else if canon, _ := registry.Canonical(s); got != canon {
					t.Errorf("id %d is %s, want %s", id, got, canon)
				}
				mu.Lock()
				if prev, ok := ids[s]; ok && prev != id {
					t.Errorf("schema %d got ids %d and %d", i, prev, id)
				}
				ids[s] = id
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("id %d given to two schemas", id)
		}
		seen[id] = true
	}
	if len(seen) != len(schemas) {
		t.Fatalf("%d ids for %d schemas", len(seen), len(schemas))
	}
}

func BenchmarkSchemaByID(b *testing.B) {
	r, err := registry.New(b.Context(), registrytest.NewStore(), registry.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	id, err := r.Register(b.Context(), "s", userV1)
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.SchemaByID(b.Context(), id); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRegisterNeedsASubject(t *testing.T) {
	r, _ := newRegistry(t)
	if _, err := r.Register(t.Context(), "", userV1); err == nil {
		t.Fatal("registered under an empty subject")
	}
}
