package tasks

import "sync"

// Evolutions serialises the schema evolutions of each subject among the tasks of one process.
// Evolving reads the latest version, merges into it and registers the result; two tasks
// interleaving those steps can register, last, a version without the other's new fields (a
// field removed with a default is compatible, so the registry accepts it). Under the lock the
// second task reads the first one's version. Tasks in other processes are caught afterwards by
// the encoder's check of the versions registered in between.
type Evolutions struct {
	mu       sync.Mutex
	subjects map[string]*sync.Mutex
}

// NewEvolutions returns the lock table to share among a process's tasks.
func NewEvolutions() *Evolutions { return &Evolutions{subjects: map[string]*sync.Mutex{}} }

// lock takes subject's lock and returns its release; a nil table locks nothing.
func (e *Evolutions) lock(subject string) (unlock func()) {
	if e == nil {
		return func() {}
	}
	e.mu.Lock()
	m, ok := e.subjects[subject]
	if !ok {
		m = new(sync.Mutex)
		e.subjects[subject] = m
	}
	e.mu.Unlock()
	m.Lock()
	return m.Unlock
}
