#!/usr/bin/env bash
# make demo shows both directions. A standalone process runs two connectors: a source capturing
# a "shop" database that a generator keeps writing to (`mongorelay consume` prints the decoded
# records as they arrive), and a sink writing the JSON messages a script sends to the topic
# demo.feedback into MongoDB's demo_sink.feedback (the script prints each one as it lands).
# Ctrl-C stops the demo.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=/dev/null
. .cache/env/env.sh
DEMO=.cache/demo
REGISTRY=${MONGORELAY_DEMO_REGISTRY:-127.0.0.1:8081}
mkdir -p "$DEMO"

cat >"$DEMO/connector.json" <<JSON
{"name": "demo-shop", "config": {
  "connector.class": "mongodb",
  "mongodb.connection.string": "$MONGORELAY_TEST_MONGO",
  "database.include.list": "shop",
  "topic.prefix": "demo",
  "heartbeat.interval.ms": "2000"
}}
JSON

cat >"$DEMO/sink.json" <<JSON
{"name": "demo-sink", "config": {
  "connector.class": "mongodb-sink",
  "mongodb.connection.string": "$MONGORELAY_TEST_MONGO",
  "topics": "demo.feedback",
  "database": "demo_sink",
  "collection": "feedback"
}}
JSON

pids=()
cleanup() {
	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo
	echo "demo stopped. The servers still run: 'make env-down' stops them."
	echo "The connector's log is in $DEMO/standalone.log."
}
trap cleanup INT TERM EXIT

# The collections exist before the connector starts, so its first scan finds them at once.
"$MONGORELAY_TEST_PYTHON" deploy/demo/generate.py --count 1 >/dev/null
# The sink's topic too, so its first listing finds it.
"$MONGORELAY_TEST_PYTHON" deploy/demo/feedback.py --create-topic

bin/mongorelay standalone --kafka "$MONGORELAY_TEST_KAFKA" --registry-listen "$REGISTRY" \
	--offsets-topic demo-offsets --schemas-topic demo-schemas "$DEMO/connector.json" "$DEMO/sink.json" \
	2>"$DEMO/standalone.log" &
pids+=($!)

"$MONGORELAY_TEST_PYTHON" deploy/demo/generate.py --rate 5 >"$DEMO/generator.log" 2>&1 &
pids+=($!)
"$MONGORELAY_TEST_PYTHON" deploy/demo/feedback.py --rate 0.5 &
pids+=($!)

echo "capturing database 'shop' on $MONGORELAY_TEST_MONGO into topics demo.shop.* (registry http://$REGISTRY)"
echo "and the JSON messages sent to topic demo.feedback into MongoDB's demo_sink.feedback (lines 'sink: ...')"
echo "decoded records follow; press Ctrl-C to stop the demo."
echo
bin/mongorelay consume --kafka "$MONGORELAY_TEST_KAFKA" --registry "http://$REGISTRY" \
	demo.shop.customers demo.shop.orders
