//go:build chaos

package chaos

import (
	"flag"
	"time"
)

// The run's shape, from `make chaos` (SEED, OPS, DURATION, EXACTLY_ONCE), `make chaos-outages`
// (SEED, EXACTLY_ONCE) or go test -args.
var (
	seed        = flag.Uint64("seed", 1, "seed of the writer's operations and of the fault schedule")
	opsFlag     = flag.Int("ops", 10_000, "operations the writer issues")
	idsFlag     = flag.Int("ids", 10_000, "document ids the operations pick from, spread over the 3 collections")
	duration    = flag.Duration("duration", 90*time.Second, "time the writer spreads its operations over (sets the write rate and the number of faults)")
	exactlyOnce = flag.Bool("exactly-once", true, "run the connectors with exactly.once=true (the default) and fail on any duplicate; false runs them at-least-once")
	killEvery   = flag.Duration("kill-every", 20*time.Second, "time from one kill -9 to the next; a SIGSTOP falls halfway between")
	outageDown  = flag.Duration("outage-down", 30*time.Second, "TestOutages: how long each server stays away from the nodes")
	outageKeys  = flag.String("outages", "kafka,mongodb,registry", "TestOutages: which outages to run, of kafka, mongodb and registry (always in that order)")
	outageRate  = flag.Float64("outage-rate", 100, "TestOutages: the writer's operations a second, from before the first outage to after the last")
	binary      = flag.String("binary", "../../bin/mongorelay", "the mongorelay binary (make build)")
)
