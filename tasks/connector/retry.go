package connector

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The keys of how the runner retries a task after a retriable failure, named as Kafka
// Connect names its own. Every kind declares them in its ConfigDef, with these defaults,
// ranges and docs, and checks them with ParseRetry; the runner reads them from the
// assignment's config, so they mean the same for every kind.
const (
	RetryTimeoutKey  = "errors.retry.timeout"
	RetryDelayMaxKey = "errors.retry.delay.max.ms"
)

// Defaults and ranges of the retry keys, in milliseconds.
const (
	DefaultRetryTimeoutMs = -1
	// DefaultRetryDelayMaxMs is short enough that a task is back within seconds of an outage
	// ending, long enough that a long outage costs one attempt per task every 10 s.
	DefaultRetryDelayMaxMs = 10_000
	MinRetryTimeoutMs      = -1
	MaxRetryTimeoutMs      = math.MaxInt64 / int64(time.Millisecond)
	MinRetryDelayMaxMs     = 100
	MaxRetryDelayMaxMs     = 3_600_000
)

// The retry keys' documentation, for every kind's ConfigDef.
const (
	RetryTimeoutDoc = "How long a task may go on failing with retriable errors (Kafka, MongoDB or the schema registry " +
		"unreachable, a primary stepping down, a transaction coordinator moving) before it is FAILED, in milliseconds " +
		"from its first failure since it last ran healthy for 30 seconds. -1 (the default) retries for as long as " +
		"the failure lasts, so that a task comes back by itself once an outage ends; 0 fails the task at its first " +
		"error. While it waits to retry, the task's status is RESTARTING, its trace saying why, since when and " +
		"when the next attempt is. Errors a retry cannot fix (bad credentials, history lost under " +
		"offset.lost.policy=fail, a config the server refuses, a panic) fail the task at once whatever this says."
	RetryDelayMaxDoc = "The longest wait between two attempts of a failing task, in milliseconds: the wait starts at " +
		"1 second and doubles up to this. The default, 10 seconds, brings a task back within seconds of an outage " +
		"ending while costing each task only one attempt every 10 seconds while it lasts; raise it to spare a " +
		"service that many tasks retry at once."
)

// HealthyRun is how long a run must stay healthy (RUNNING with nothing degraded) to end its
// task's streak of failures: the next failure starts a new streak, at the first backoff, and
// errors.retry.timeout counts from it (RetryTimeoutDoc says so).
const HealthyRun = 30 * time.Second

// Retry is how the runner retries a task after a retriable failure.
type Retry struct {
	// Timeout bounds how long the task may go on failing, from its first failure without a
	// healthy run since, before it is FAILED: negative retries for as long as it lasts, 0
	// fails it at the first error.
	Timeout time.Duration
	// DelayMax caps the wait between attempts, which starts at a second and doubles.
	DelayMax time.Duration
}

// ParseRetry reads the retry keys of a connector's config, each absent one at its default,
// and reports every bad value with its fix.
func ParseRetry(config map[string]string) (Retry, []Problem) {
	var problems []Problem
	ms := func(key string, def, lo, hi int64, fix string) time.Duration {
		v := strings.TrimSpace(config[key])
		if v == "" {
			return time.Duration(def) * time.Millisecond
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			problems = append(problems, Problem{Key: key, Value: v, Message: fmt.Sprintf("%q is not a whole number of milliseconds from %d to %d: %s", v, lo, hi, fix)})
			return time.Duration(def) * time.Millisecond
		}
		return time.Duration(n) * time.Millisecond
	}
	r := Retry{
		Timeout: ms(RetryTimeoutKey, DefaultRetryTimeoutMs, MinRetryTimeoutMs, MaxRetryTimeoutMs,
			"use -1 to retry for as long as a failure lasts, 0 to fail at the first error, or how long to retry"),
		DelayMax: ms(RetryDelayMaxKey, DefaultRetryDelayMaxMs, MinRetryDelayMaxMs, MaxRetryDelayMaxMs,
			"use the longest wait between two attempts, e.g. 10000"),
	}
	return r, problems
}
