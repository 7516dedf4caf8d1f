#!/usr/bin/env bash
# Failover timing for `make bench` (issue 22): runs the cluster e2e RUNS times against the
# environment of .cache/env/env.sh and reports min / median / max of: kill -9 of a follower and
# of the leader to the first new record from a moved task, the election after the leader's
# kill, a clean stop (SIGTERM) of the leader, a 2 s SIGSTOP of a follower and of the leader
# (which must move nothing: the test fails otherwise) and a 15 s one (its tasks move after the session timeout), and a rolling
# restart with worker.rebalance.delay (which must move nothing either).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-5}
# OUT: the results file to append to; bench/run.sh passes the one its harness wrote.
OUT=${OUT:-bench/results/$(date -u +%F).md}
mkdir -p "$(dirname "$OUT")"
LOG=.cache/bench/failover.log
mkdir -p .cache/bench
set -a; . .cache/env/env.sh; set +a
: >"$LOG"
for i in $(seq 1 "$RUNS"); do
	echo "failover run $i of $RUNS" >&2
	go test -tags e2e -count=1 -timeout 10m -run 'TestClusterFailover' -v ./e2e/cluster/ >>"$LOG" 2>&1 ||
		{ tail -n 40 "$LOG" >&2; echo "failover run $i failed (log: $LOG)" >&2; exit 1; }
done
stats() { # reads seconds, one a line; prints min / median / max
	sort -n | awk '{v[NR]=$1} END{m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.2f / %.2f / %.2f s (%d runs)", v[1], m, v[NR], NR}'
}
# Go prints durations under a second in ms ("933ms"): seconds converts them.
seconds() { sed -E 's/^([0-9.]+)(m?s)$/\1 \2/' | awk '{print ($2 == "ms") ? $1 / 1000 : $1}'; }
# after PATTERN WHAT: the duration after "WHAT after" on the lines matching PATTERN, in seconds.
after() { grep -E "$1" "$LOG" | sed -E "s/.*$2 after ([0-9.]+m?s).*/\1/" | seconds; }
# Each run kills a follower first, then the leader: odd lines are followers, even lines leaders.
follower=$(after 'kill -9 of n[0-9]+ \(' 'first new record from a moved task' | awk 'NR%2==1' | stats)
leader=$(after 'kill -9 of n[0-9]+ \(' 'first new record from a moved task' | awk 'NR%2==0' | stats)
election=$(after 'kill -9 of leader .*new leader' 'new leader n[0-9]+' | stats)
# A clean stop (SIGTERM) of the leader: it hands the leadership over, its tasks stop and commit,
# then move.
sigterm=$(after 'SIGTERM of leader' 'first new record from a moved task' | stats)
handover=$(after 'SIGTERM of leader' 'new leader n[0-9]+' | stats)
# pause WHO: a 2 s SIGSTOP's lines (WHO: "n" for the follower, "leader n" for the leader), the
# node's first record after SIGCONT.
pause() { grep -E "SIGSTOP of $1[0-9]+ for 2 s" "$LOG" | sed -E 's/.*its first record ([0-9.]+m?s) after SIGCONT.*/\1/' | seconds | stats; }
unmoved() { grep -cE "SIGSTOP of $1[0-9]+ for 2 s .*no task moved" "$LOG" || true; }
pause2=$(pause n)
pause2moved=$(unmoved n)
pause2leader=$(pause 'leader n')
pause2leaderMoved=$(unmoved 'leader n')
pause15=$(after 'SIGSTOP of n[0-9]+ \(' 'first new record from a moved task' | stats)
rolling=$(grep -E 'restarted: every task RUNNING again' "$LOG" | sed -E 's/.*again ([0-9.]+m?s) after.*/\1/' | seconds | stats)
rollingRuns=$(grep -c -- '--- PASS: TestClusterFailover/rolling_restart' "$LOG" || true)
{
	echo
	echo "## Failover, $(date -u '+%F %H:%M') UTC ($(nproc) cores)"
	echo
	echo "3 nodes, 24 tasks, 1,000 writes/s (e2e/cluster TestClusterFailover, $RUNS runs; worker heartbeat"
	echo "500 ms, session timeout 5 s, lease 4 s; Raft heartbeat timeout 500 ms). Times from the signal."
	echo
	echo "| what | min / median / max |"
	echo "|---|---|"
	echo "| kill -9 of the follower holding the most tasks: first new record from a moved task | $follower |"
	echo "| kill -9 of the leader: first new record from a moved task | $leader |"
	echo "| kill -9 of the leader: new leader elected | $election |"
	echo "| SIGTERM of the leader: first new record from a moved task | $sigterm |"
	echo "| SIGTERM of the leader: leadership handed over | $handover |"
	echo "| SIGSTOP 2 s of the follower holding the most tasks: no task moved in $pause2moved of $RUNS runs; its first record after SIGCONT | $pause2 |"
	echo "| SIGSTOP 2 s of the leader: no task moved in $pause2leaderMoved of $RUNS runs; its first record after SIGCONT | $pause2leader |"
	echo "| SIGSTOP 15 s (silent, waited for up to the session timeout): first new record from a moved task | $pause15 |"
	echo "| rolling restart with worker.rebalance.delay, no task moved in $rollingRuns of $RUNS runs: a node's SIGTERM to all tasks RUNNING again | $rolling |"
} | tee -a "$OUT"
