package registry

import (
	"log/slog"
	"slices"
	"sync"

	"github.com/hamba/avro/v2"
)

// entry is one distinct schema: an id and its canonical text.
type entry struct {
	id     int
	text   string
	refs   int // subject versions using it, soft-deleted ones included
	parsed func() (avro.Schema, error)
}

func newEntry(id int, text string) *entry {
	return &entry{id: id, text: text, parsed: sync.OnceValues(func() (avro.Schema, error) {
		return parseAvro(text)
	})}
}

// version is one version of a subject.
type version struct {
	version int
	entry   *entry
	deleted bool
}

// subject holds a subject's versions, in ascending order, and its own
// compatibility level ("" when it inherits the global one).
type subject struct {
	versions []version
	level    Compatibility
}

func (s *subject) find(v int) (int, bool) {
	return slices.BinarySearchFunc(s.versions, v, func(x version, v int) int { return x.version - v })
}

// live returns the versions that are not soft-deleted, oldest first.
func (s *subject) live() []version {
	var out []version
	for _, v := range s.versions {
		if !v.deleted {
			out = append(out, v)
		}
	}
	return out
}

// latest returns the newest version, the newest live one unless deleted.
func (s *subject) latest(deleted bool) (version, bool) {
	for i := len(s.versions) - 1; i >= 0; i-- {
		if deleted || !s.versions[i].deleted {
			return s.versions[i], true
		}
	}
	return version{}, false
}

func (s *subject) has(deleted bool) bool {
	_, ok := s.latest(deleted)
	return ok
}

// state is the registry's whole state, rebuilt from the store's changes.
type state struct {
	log      *slog.Logger
	byID     map[int]*entry
	byText   map[string]*entry
	subjects map[string]*subject
	global   Compatibility // "" until set: the registry's default applies
	maxID    int
}

func newState(log *slog.Logger) *state {
	return &state{
		log:      log,
		byID:     map[int]*entry{},
		byText:   map[string]*entry{},
		subjects: map[string]*subject{},
	}
}

// apply makes one change; it is idempotent and depends only on the last
// change per key, which is what lets a compacted store replay it.
func (st *state) apply(c Change) {
	switch c.Kind {
	case ChangeVersion:
		st.applyVersion(c)
	case ChangeConfig:
		level := c.Level
		if c.Remove {
			level = ""
		}
		if c.Subject == "" {
			st.global = level
			return
		}
		s := st.subject(c.Subject)
		s.level = level
		st.dropIfEmpty(c.Subject, s)
	case ChangeMaxID:
		st.maxID = max(st.maxID, c.ID)
	}
}

func (st *state) applyVersion(c Change) {
	s := st.subject(c.Subject)
	i, found := s.find(c.Version)
	if found {
		st.release(s.versions[i].entry)
	}
	if c.Remove {
		if found {
			s.versions = slices.Delete(s.versions, i, i+1)
		}
		st.dropIfEmpty(c.Subject, s)
		return
	}
	e := st.acquire(c.ID, c.Schema)
	v := version{version: c.Version, entry: e, deleted: c.Deleted}
	if found {
		s.versions[i] = v
	} else {
		s.versions = slices.Insert(s.versions, i, v)
	}
	st.maxID = max(st.maxID, c.ID)
}

// acquire returns the entry for id, creating it, and counts one more use.
func (st *state) acquire(id int, text string) *entry {
	e, ok := st.byID[id]
	if !ok {
		canon, err := Canonical(text)
		if err != nil {
			// Stored texts are canonical already; keep a bad one as it is so
			// its id still resolves and is never reused.
			canon = text
		}
		e = newEntry(id, canon)
		st.byID[id] = e
		if other, taken := st.byText[canon]; taken {
			st.log.Warn("schema registry: two ids for one schema, keeping the lower for lookups",
				"id", id, "other_id", other.id)
			if other.id < id {
				e.refs++
				return e
			}
		}
		st.byText[canon] = e
	} else if e.text != text {
		if canon, err := Canonical(text); err != nil || canon != e.text {
			st.log.Warn("schema registry: one id for two schemas, keeping the first", "id", id)
		}
	}
	e.refs++
	return e
}

// release counts one use of e less and forgets e once unused, as Confluent
// does once every version with an id is hard-deleted.
func (st *state) release(e *entry) {
	e.refs--
	if e.refs > 0 {
		return
	}
	delete(st.byID, e.id)
	if st.byText[e.text] == e {
		delete(st.byText, e.text)
	}
}

func (st *state) subject(name string) *subject {
	s, ok := st.subjects[name]
	if !ok {
		s = &subject{}
		st.subjects[name] = s
	}
	return s
}

func (st *state) dropIfEmpty(name string, s *subject) {
	if len(s.versions) == 0 && s.level == "" {
		delete(st.subjects, name)
	}
}
