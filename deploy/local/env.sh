#!/usr/bin/env bash
# The test environment: Apache Kafka (KRaft, one combined broker/controller) and the MongoDB
# stand-in, both on loopback, both real servers run with the machine's Java.
#
#   deploy/local/env.sh up      install what is missing, start what is not running, write .cache/env/env.sh
#   deploy/local/env.sh down    stop both, leave no process behind, drop their data
#   deploy/local/env.sh status  say what runs
#
# Everything downloaded or built lands under .cache/ and is reused on the next run.
# Ports can be moved with MONGORELAY_ENV_KAFKA_PORT, MONGORELAY_ENV_KAFKA_CONTROLLER_PORT and
# MONGORELAY_ENV_MONGO_PORT; the stand-in's oplog bound with MONGORELAY_ENV_OPLOG_MAX_ENTRIES.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=$ROOT/.cache
ENV_DIR=$CACHE/env
M2=$CACHE/m2
KAFKA_LIBS=$CACHE/kafka/libs
STANDIN_JAR=$CACHE/mongo-standin/mongo-standin.jar
VENV=$CACHE/venv

KAFKA_PORT=${MONGORELAY_ENV_KAFKA_PORT:-19092}
CONTROLLER_PORT=${MONGORELAY_ENV_KAFKA_CONTROLLER_PORT:-19093}
MONGO_PORT=${MONGORELAY_ENV_MONGO_PORT:-27117}
OPLOG_MAX_ENTRIES=${MONGORELAY_ENV_OPLOG_MAX_ENTRIES:-1000000}
START_TIMEOUT_S=${MONGORELAY_ENV_START_TIMEOUT:-120}

log() { printf 'env: %s\n' "$*" >&2; }
die() { printf 'env: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------- installing

apt_updated=
apt_install() {
	command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available: install $*"
	if [ -z "$apt_updated" ]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
		apt_updated=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

install_tools() {
	command -v java >/dev/null || apt_install openjdk-17-jre-headless
	command -v mvn >/dev/null || apt_install maven
	command -v python3 >/dev/null || apt_install python3 python3-venv
	python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
	# systemd-analyze verifies deploy/systemd's unit (deploy/check).
	command -v systemd-analyze >/dev/null || apt_install systemd
	# ip (network namespaces, veth pairs, a bridge) builds the multi-host test's network.
	command -v ip >/dev/null || apt_install iproute2
}

# install_browser installs Debian's chromium, which the status page's end-to-end test drives
# headless. It runs on every `up`, even when the servers already run, since nothing else would.
install_browser() {
	command -v chromium >/dev/null || apt_install chromium
}

# fingerprint prints a short hash of the named files, so a changed input rebuilds its output.
fingerprint() { cat "$@" | sha256sum | cut -c1-16; }

mvn_quiet() { mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$M2" "$@"; }

install_kafka() {
	local pom=$ROOT/deploy/local/kafka/pom.xml
	local marker
	marker=$KAFKA_LIBS/.resolved-$(fingerprint "$pom")
	[ -f "$marker" ] && return
	log "resolving Apache Kafka from Maven Central into .cache/kafka/libs"
	rm -rf "$KAFKA_LIBS"
	mvn_quiet -f "$pom" dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS"
	touch "$marker"
}

install_standin() {
	local src=$ROOT/deploy/local/mongo-standin
	if [ -f "$STANDIN_JAR" ] && [ -z "$(find "$src" -newer "$STANDIN_JAR" -type f -print -quit)" ]; then
		return
	fi
	log "building the MongoDB stand-in (mongo-java-server) into .cache/mongo-standin"
	mvn_quiet -f "$src/pom.xml" package
	[ -f "$STANDIN_JAR" ] || die "the stand-in build did not produce $STANDIN_JAR"
	touch "$STANDIN_JAR"
}

install_venv() {
	local req=$ROOT/deploy/local/requirements.txt
	local marker
	marker=$VENV/.installed-$(fingerprint "$req")
	[ -f "$marker" ] && return
	log "creating the Python venv in .cache/venv"
	rm -rf "$VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
	touch "$marker"
}

# ----------------------------------------------------------------------------------- processes

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() {
	local f=$ENV_DIR/$1.pid
	[ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

healthy() {
	case $1 in
	kafka) pid_alive kafka && port_open "$KAFKA_PORT" ;;
	mongo) pid_alive mongo && port_open "$MONGO_PORT" ;;
	esac
}

# start NAME LOG CMD...: runs CMD in a session of its own, so stop can end the whole group.
start() {
	local name=$1 logfile=$2
	shift 2
	setsid "$@" >"$logfile" 2>&1 </dev/null &
	echo $! >"$ENV_DIR/$name.pid"
}

stop() {
	local name=$1 f=$ENV_DIR/$1.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$name did not stop within 20 s: killing it"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$f"
}

# wait_for NAME LOG PATTERN PORT: until the log says PATTERN and the port answers.
wait_for() {
	local name=$1 logfile=$2 pattern=$3 port=$4 deadline=$((SECONDS + START_TIMEOUT_S))
	until grep -q "$pattern" "$logfile" 2>/dev/null && port_open "$port"; do
		pid_alive "$name" || { tail -n 40 "$logfile" >&2; die "$name exited while starting (log: $logfile)"; }
		[ $SECONDS -lt $deadline ] || { tail -n 40 "$logfile" >&2; die "$name did not start within ${START_TIMEOUT_S}s (log: $logfile)"; }
		sleep 0.2
	done
}

start_kafka() {
	local dir=$ENV_DIR/kafka
	mkdir -p "$dir"
	cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=67108864
EOF
	local java=(java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
		-Dkafka.logs.dir="$dir" -Dlog4j2.configurationFile="$ROOT/deploy/local/kafka/log4j2.properties"
		-cp "$KAFKA_LIBS/*")
	if [ ! -f "$dir/data/meta.properties" ]; then
		local cluster_id
		cluster_id=$("${java[@]}" kafka.tools.StorageTool random-uuid)
		"${java[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
			-c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
			{ cat "$dir/format.log" >&2; die "formatting Kafka storage failed"; }
	fi
	log "starting Kafka on 127.0.0.1:$KAFKA_PORT"
	start kafka "$dir/stdout.log" "${java[@]}" kafka.Kafka "$dir/server.properties"
}

start_mongo() {
	log "starting the MongoDB stand-in on 127.0.0.1:$MONGO_PORT"
	start mongo "$ENV_DIR/mongo.log" java -Xms512m -Xmx4g -XX:+UseG1GC -jar "$STANDIN_JAR" \
		--bind 127.0.0.1 --port "$MONGO_PORT" --oplog-max-entries "$OPLOG_MAX_ENTRIES"
}

write_env_file() {
	local tmp=$ENV_DIR/env.sh.tmp
	cat >"$tmp" <<EOF
# Written by deploy/local/env.sh up; source it to point tests at the running servers.
export MONGORELAY_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
export MONGORELAY_TEST_MONGO='mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true'
export MONGORELAY_TEST_MONGO_JAR=$STANDIN_JAR
export MONGORELAY_TEST_PYTHON=$VENV/bin/python
export MONGORELAY_TEST_KAFKA_LIBS=$KAFKA_LIBS
EOF
	mv "$tmp" "$ENV_DIR/env.sh"
}

# --------------------------------------------------------------------------------------- verbs

up() {
	mkdir -p "$ENV_DIR"
	install_browser
	if healthy kafka && healthy mongo && [ -f "$ENV_DIR/env.sh" ]; then
		log "already running (kafka 127.0.0.1:$KAFKA_PORT, mongo 127.0.0.1:$MONGO_PORT)"
		return
	fi
	install_tools
	install_kafka
	install_standin
	install_venv
	if ! healthy kafka; then
		stop kafka
		port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process: set MONGORELAY_ENV_KAFKA_PORT"
		start_kafka
	fi
	if ! healthy mongo; then
		stop mongo
		port_open "$MONGO_PORT" && die "port $MONGO_PORT is taken by another process: set MONGORELAY_ENV_MONGO_PORT"
		start_mongo
	fi
	wait_for kafka "$ENV_DIR/kafka/server.log" 'Kafka Server started' "$KAFKA_PORT"
	wait_for mongo "$ENV_DIR/mongo.log" 'mongo-standin listening' "$MONGO_PORT"
	write_env_file
	log "ready: . .cache/env/env.sh"
}

down() {
	stop mongo
	stop kafka
	rm -rf "$ENV_DIR/kafka/data" "$ENV_DIR/env.sh"
	log "stopped"
}

status() {
	local name
	for name in kafka mongo; do
		if healthy "$name"; then echo "$name: running (pid $(cat "$ENV_DIR/$name.pid"))"; else echo "$name: stopped"; fi
	done
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*) die "usage: $0 up|down|status" ;;
esac
