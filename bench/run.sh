#!/usr/bin/env bash
# `make bench`: builds what the benchmark runs, resolves the peers from Maven Central, and runs
# bench/cmd/benchrun, which starts its own Kafka broker and MongoDB stand-in, measures every
# system and appends the results to bench/results/<date>.md. Every process it starts is stopped
# when it ends, whatever the outcome.
#
#   bench/run.sh [benchrun flags]        e.g. bench/run.sh -events 200000 -systems relay-1,mkc-json
#   make bench BENCH_FLAGS="-events 50000"
#
# BENCH_BASELINE=<git revision> builds that revision's mongorelay into
# .cache/bench/bin/mongorelay-<commit> and runs it alternately with relay-1 (benchrun -baseline);
# FAILOVER_RUNS=0 leaves out the failover runs at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$ROOT/.cache
BENCH=$CACHE/bench
PEERS_POM=$ROOT/bench/peers/pom.xml
PIDS=$BENCH/run/pids

log() { printf 'bench: %s\n' "$*" >&2; }

cd "$ROOT"
mkdir -p "$BENCH/bin"

harness=
env_started=
baseline_src=
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [ -n "$baseline_src" ]; then
		rm -rf "$baseline_src"
	fi
	if [ -n "$env_started" ]; then
		deploy/local/env.sh down || true
	fi
	if [ -n "$harness" ] && kill -0 "$harness" 2>/dev/null; then
		kill -TERM "$harness" 2>/dev/null || true
		for _ in $(seq 1 150); do kill -0 "$harness" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$harness" 2>/dev/null || true
	fi
	# Whatever the harness could not stop (it was killed, or crashed): its children run in
	# process groups of their own, listed in $PIDS.
	if [ -f "$PIDS" ]; then
		while read -r pid; do
			[ -n "$pid" ] || continue
			kill -TERM -- "-$pid" 2>/dev/null || true
		done <"$PIDS"
		sleep 2
		while read -r pid; do
			[ -n "$pid" ] || continue
			kill -KILL -- "-$pid" 2>/dev/null || true
		done <"$PIDS"
		rm -f "$PIDS"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The jars the environment uses (Kafka, the stand-in) are installed by deploy/local/env.sh; the
# benchmark runs its own servers from them (private ports and data: other tests running on the
# shared environment neither disturb the figures nor get disturbed), so it only needs them
# present. If it has to bring the environment up to install them, it brings it down again.
# A stand-in jar older than its sources is rebuilt, as env.sh up does.
standin_jar=$CACHE/mongo-standin/mongo-standin.jar
if [ -z "$(ls "$CACHE"/kafka/libs/.resolved-* 2>/dev/null)" ] || [ ! -f "$standin_jar" ] ||
	[ -n "$(find deploy/local/mongo-standin -newer "$standin_jar" -type f -print -quit)" ]; then
	log "installing the test environment's jars (deploy/local/env.sh up)"
	deploy/local/env.sh status | grep -q 'running' || env_started=1
	deploy/local/env.sh up
fi

marker=$BENCH/peers/.resolved-$(sha256sum "$PEERS_POM" | cut -c1-16)
if [ ! -f "$marker" ]; then
	log "resolving Kafka Connect and the peers from Maven Central into .cache/bench/peers"
	rm -rf "$BENCH/peers"
	mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" -f "$PEERS_POM" \
		-Dbench.peers.dir="$BENCH/peers" \
		dependency:copy-dependencies@worker dependency:copy@mongo-kafka dependency:unpack@debezium
	touch "$marker"
fi

log "building bin/mongorelay and the harness"
make -s build
for cmd in benchrun ceiling relayprof; do
	CGO_ENABLED=0 go build -trimpath -o "$BENCH/bin/$cmd" "./bench/cmd/$cmd"
done

# The baseline is built from the revision's tree alone (git archive), with the ldflags of
# `make build`, once per commit.
baseline=()
if [ -n "${BENCH_BASELINE:-}" ]; then
	rev=$(git rev-parse --short=12 --verify "$BENCH_BASELINE^{commit}")
	bin=$BENCH/bin/mongorelay-$rev
	if [ ! -x "$bin" ]; then
		log "building mongorelay at $BENCH_BASELINE ($rev) into .cache/bench/bin/mongorelay-$rev"
		baseline_src=$(mktemp -d "$BENCH/src-$rev.XXXXXX")
		git archive "$rev" | tar -x -C "$baseline_src"
		(cd "$baseline_src" && CGO_ENABLED=0 go build -trimpath \
			-ldflags "-s -w -X main.version=$(git describe --tags --always "$rev") -X main.commit=$rev" \
			-o "$bin" ./cmd/mongorelay)
		rm -rf "$baseline_src"
		baseline_src=
	fi
	baseline=(-baseline "$bin")
fi

# Not exec: the trap above must outlive the harness. It records in $results_path the results
# file it wrote (its -results directory, its start's date), where the failover figures go too.
results_path=$BENCH/results-path
rm -f "$results_path"
"$BENCH/bin/benchrun" -root "$ROOT" -results-path "$results_path" "${baseline[@]}" "$@" &
harness=$!
wait "$harness"

# Failover after kill -9 (issue 6): 5 runs of the cluster end-to-end test on the shared test
# environment, min / median / max appended to the harness's results file.
if [ "${FAILOVER_RUNS:-5}" -gt 0 ]; then
	deploy/local/env.sh status | grep -q 'kafka: running' || env_started=1
	deploy/local/env.sh up
	RUNS=${FAILOVER_RUNS:-5} OUT=$(cat "$results_path") bench/failover.sh
fi
