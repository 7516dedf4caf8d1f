#!/usr/bin/env bash
# Failover timing for `make bench` (issue 6): runs the cluster e2e RUNS times against the
# environment of .cache/env/env.sh and reports, for a killed follower and a killed leader, the
# time from kill -9 to the first new record from a moved task, and for a leader stopped cleanly
# (SIGTERM) the same time and the leadership's hand-over: min / median / max.
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
# Each run kills a follower first, then the leader: odd lines are followers, even lines leaders.
moved() { grep -E 'kill -9 of n[0-9]+ \(' "$LOG" | sed -E 's/.*first new record from a moved task after ([0-9.]+)s.*/\1/'; }
follower=$(moved | awk 'NR%2==1' | stats)
leader=$(moved | awk 'NR%2==0' | stats)
# Go prints durations under a second in ms ("933ms"): convert them to seconds.
election=$(grep -E 'kill -9 of leader .*new leader' "$LOG" | sed -E 's/.*after ([0-9.]+)(m?s).*/\1 \2/' |
	awk '{print ($2 == "ms") ? $1 / 1000 : $1}' | stats)
# A clean stop (SIGTERM) of the leader: it hands the leadership over and its tasks move at once.
seconds() { sed -E 's/^([0-9.]+)(m?s)$/\1 \2/' | awk '{print ($2 == "ms") ? $1 / 1000 : $1}'; }
sigterm=$(grep -E 'SIGTERM of leader' "$LOG" | sed -E 's/.*first new record from a moved task after ([0-9.]+m?s).*/\1/' | seconds | stats)
handover=$(grep -E 'SIGTERM of leader' "$LOG" | sed -E 's/.*new leader n[0-9]+ after ([0-9.]+m?s);.*/\1/' | seconds | stats)
{
	echo
	echo "## Failover, $(date -u '+%F %H:%M') UTC ($(nproc) cores)"
	echo
	echo "Time from \`kill -9\` to the first new record from a moved task, 3 nodes under 1,000 writes/s"
	echo "(e2e/cluster TestClusterFailover, $RUNS runs; heartbeat 1 s, session timeout 6 s, lease 4 s)."
	echo
	echo "| what | min / median / max |"
	echo "|---|---|"
	echo "| kill -9 of the follower holding the most tasks | $follower |"
	echo "| kill -9 of the leader | $leader |"
	echo "| new leader elected after kill -9 of the leader | $election |"
	echo "| SIGTERM of the leader: first new record from a moved task | $sigterm |"
	echo "| SIGTERM of the leader: leadership handed over | $handover |"
} | tee -a "$OUT"
