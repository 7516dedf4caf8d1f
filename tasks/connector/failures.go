package connector

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// How a task's run ends tells the runner what to do next (DESIGN.md 13). An error marked
// Permanent is one a restart cannot fix: the task is FAILED at once, and the error's message
// says the fix. An error marked Fenced means a newer owner of the task fenced this run: the
// runner waits for the assignment to move rather than fence the new owner back. Any other
// error is retriable: the task runs again after a backoff, for as long as it lasts unless
// errors.retry.timeout bounds it.

// Permanent marks err as a failure that running the task again cannot fix (bad credentials,
// history lost under offset.lost.policy=fail, a config the server refuses, a panic): the
// runner marks the task FAILED at once instead of restarting it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	_, ok := errors.AsType[*permanentError](err)
	return ok
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Fenced marks err as the refusal of a run's writes because a newer owner of the task took
// over its single-writer fence (a Kafka transactional id initialised elsewhere).
func Fenced(err error) error {
	if err == nil {
		return nil
	}
	return &fencedError{err}
}

// IsFenced reports whether err, or an error it wraps, was marked Fenced.
func IsFenced(err error) bool {
	_, ok := errors.AsType[*fencedError](err)
	return ok
}

type fencedError struct{ err error }

func (e *fencedError) Error() string { return e.err.Error() }
func (e *fencedError) Unwrap() error { return e.err }

// PanicError is a task's failure from a panic: the value panicked with, and the stack of the
// goroutine where it happened.
type PanicError struct {
	Value any
	Stack []byte
}

// Error says what panicked and why the task is not restarted, then gives the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("task panicked: %v (the task is FAILED rather than restarted: the same input would make it panic again; "+
		"report this trace, and restart the task once a fixed version runs or the input is gone)\n\n%s", e.Value, e.Stack)
}

// Recover, deferred by a task's run and by every goroutine the task starts, turns a panic of
// that goroutine into *err: a Permanent *PanicError with the stack, so that a panic fails its
// task only, never the process (DESIGN.md 13). It must be deferred directly:
//
//	defer connector.Recover(&err)
func Recover(err *error) {
	if p := recover(); p != nil {
		*err = Permanent(&PanicError{Value: p, Stack: debug.Stack()})
	}
}
