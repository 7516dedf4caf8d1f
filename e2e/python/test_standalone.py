"""Acceptance of the standalone pipeline (issue 4): `mongorelay standalone` against real servers.

MongoDB is written with pymongo, Kafka read with confluent-kafka and its Avro deserializer
pointed at mongorelay's built-in registry: what a downstream user runs. The expectations come
from workload.MixedLoad's operation log, never from mongorelay's own output.
"""
import json
import os
import random
import re
import threading
import time
import urllib.request

import pytest
from pymongo import MongoClient

from changes import ChangeDecoder, Registry, event_position, timeline
from checks import after_problems, check_collection, check_document, dedupe, fail_on
from kafka_io import cluster_time, is_stamp, read_offsets, read_topics
from pipeline import free_port
from processes import assert_stops_failed
from workload import COLLECTIONS, MixedLoad, canonical_id


def load_seed(record_property):
    """The load's seed: E2E_SEED to replay a failure, else random; shown in the report."""
    value = int(os.environ.get("E2E_SEED") or random.randrange(1 << 31))
    record_property("seed", value)
    print(f"workload seed {value} (E2E_SEED={value} replays it)")
    return value


def read_changes(pipeline, collections, min_records=0, quiet_s=3.0, timeout_s=120, running=None):
    """Every record of the collections' topics, decoded, per collection; and the records that
    did not decode. Waits for min_records in all, then for quiet_s without new records. The
    process running, if given, must still run afterwards (its built-in registry decodes)."""
    records = read_topics(pipeline.kafka, [pipeline.topic(c) for c in collections],
                          min_records=min_records, quiet_s=quiet_s, timeout_s=timeout_s)
    if running is not None and not running.alive():
        raise AssertionError(f"{running.name} exited with {running.popen.returncode} while its records "
                             f"were read ({len(records)} read):\n{running.tail()}")
    changes, problems = ChangeDecoder(Registry.at(pipeline.registry_url)).decode_all(records)
    by_coll = {c: [ch for ch in changes if ch.record.topic == pipeline.topic(c)] for c in collections}
    return by_coll, problems


def final_state_problems(coll, changes_by_key, documents):
    """The last record of every document must match MongoDB: its after, or a delete if it is gone."""
    problems = []
    for key, events in changes_by_key.items():
        last = events[-1]
        if last.op == "d":
            if key in documents:
                problems.append(f"{coll} {key}: last record is a delete but the document exists")
        elif key not in documents:
            problems.append(f"{coll} {key}: document is gone but its last record is {last.op} ({last.where()})")
        else:
            problems += [f"{coll} {key} last record ({last.where()}): {p}"
                         for p in after_problems(last, documents[key])]
    problems += [f"{coll} {key}: in MongoDB, never in Kafka" for key in documents.keys() - changes_by_key.keys()]
    return problems


def documents_of(collection):
    return {canonical_id(doc["_id"]): doc for doc in collection.find()}


def test_mixed_load_is_delivered_exactly_in_order(pipeline, mongo, record_property):
    db = mongo[pipeline.db]
    for coll in COLLECTIONS:
        db.create_collection(coll)
    relay = pipeline.start(pipeline.connector(COLLECTIONS), "relay")
    pipeline.wait_streaming(relay, COLLECTIONS)

    load = MixedLoad(db, 20_000, load_seed(record_property))
    started = time.monotonic()
    log = load.run()
    record_property("load_seconds", round(time.monotonic() - started, 1))
    expected = sum(log.expected_records(c) for c in COLLECTIONS)
    changes, problems = read_changes(pipeline, COLLECTIONS, min_records=expected, running=relay)
    record_property("records", sum(len(c) for c in changes.values()))

    for coll in COLLECTIONS:
        documents = documents_of(db[coll])
        assert documents.keys() == log.final_states(coll).keys(), f"{coll}: the model lost track of MongoDB"
        line = timeline(changes[coll])
        problems += check_collection(log, coll, line, pipeline.db)
        problems += final_state_problems(coll, line.by_key, documents)
    fail_on(problems, f"records against the {log.count} operations applied (seed {load.seed})")

    registry = Registry.at(pipeline.registry_url)
    subjects = set(registry.subjects())
    for coll in COLLECTIONS:
        topic = pipeline.topic(coll)
        assert f"{topic}-key" in subjects, f"no key subject for {topic}: {sorted(subjects)}"
        versions = registry.versions(f"{topic}-value")
        assert len(versions) >= 3, f"{topic}-value has versions {versions}: the load evolves it at least 3 times"
    assert relay.stop() == 0, "SIGTERM must flush, commit and exit 0"


def test_kill_9_then_restart_loses_nothing(pipeline, mongo, record_property):
    db = mongo[pipeline.db]
    for coll in COLLECTIONS:
        db.create_collection(coll)
    # At-least-once on purpose: a replay after the kill must stay at or before the committed
    # position (the exactly-once test below checks the default).
    connector = pipeline.connector(COLLECTIONS, {"exactly.once": "false"})
    first = pipeline.start(connector, "relay-before-kill")
    streaming_from = pipeline.wait_streaming(first, COLLECTIONS)

    load = MixedLoad(db, 5_000, load_seed(record_property), batch_size=50)
    failure = []
    writer = threading.Thread(target=lambda: _capture(failure, load.run, 0.05), daemon=True)
    writer.start()
    _wait_until(lambda: load.progress() >= 0.4 and _advanced(pipeline, streaming_from),
                "40% of the load applied and a position committed past the start", timeout_s=60)
    first.kill()
    killed_at = load.progress()
    record_property("killed_at_progress", round(killed_at, 2))
    assert killed_at < 0.9, f"the kill must land mid-load, but {killed_at:.0%} of the load was applied by then"
    at_kill = {key: cluster_time(values[-1]) for key, values in
               read_offsets(pipeline.kafka, pipeline.offsets_topic).items() if cluster_time(values[-1])}
    time.sleep(1)
    second = pipeline.start(connector, "relay-after-kill")
    writer.join(timeout=120)
    assert not writer.is_alive(), "the load did not finish within 120 s"
    assert not failure, f"the load failed: {failure[0]!r}"

    expected = sum(load.log.expected_records(c) for c in COLLECTIONS)
    changes, problems = read_changes(pipeline, COLLECTIONS, min_records=expected, running=second)

    def replayed_before_commit(coll, key, repeats):
        committed = at_kill.get(pipeline.offset_key(coll), (0, 0))
        return [f"{coll} {key}: {ev.where()} repeats an event at {event_position(ev)}, at or before "
                f"the position {committed} committed before the kill"
                for ev in repeats if event_position(ev) <= committed]

    duplicates = _check_deliveries(pipeline, load, changes, problems, replayed_before_commit)
    record_property("duplicates", duplicates)
    print(f"{duplicates} records delivered twice after kill -9 (at-least-once replay)")
    fail_on(problems, f"records after kill -9 and restart (seed {load.seed})")
    assert second.stop() == 0


def test_exactly_once_survives_repeated_kill_9(pipeline, mongo, record_property):
    """With exactly.once=true (the default, named here all the same) a standalone process killed -9 three times under writes, and started
    again each time, delivers every change exactly once to a read_committed consumer: its
    offsets are committed in the transactions of its records, so a restart replays nothing."""
    db = mongo[pipeline.db]
    for coll in COLLECTIONS:
        db.create_collection(coll)
    connector = pipeline.connector(COLLECTIONS, {"exactly.once": "true"})
    relay = pipeline.start(connector, "relay-eos-0")
    pipeline.wait_streaming(relay, COLLECTIONS)

    load = MixedLoad(db, 5_000, load_seed(record_property), batch_size=50)
    failure = []
    writer = threading.Thread(target=lambda: _capture(failure, load.run, 0.05), daemon=True)
    writer.start()
    kills = []
    for i, at in enumerate((0.25, 0.5, 0.75), start=1):
        _wait_until(lambda: load.progress() >= at or not writer.is_alive(), f"{at:.0%} of the load applied", timeout_s=90)
        relay.kill()
        kills.append(round(load.progress(), 2))
        time.sleep(0.5)
        relay = pipeline.start(connector, f"relay-eos-{i}")
    record_property("killed_at_progress", kills)
    writer.join(timeout=120)
    assert not writer.is_alive(), "the load did not finish within 120 s"
    assert not failure, f"the load failed: {failure[0]!r}"

    expected = sum(load.log.expected_records(c) for c in COLLECTIONS)
    changes, problems = read_changes(pipeline, COLLECTIONS, min_records=expected, running=relay)
    duplicates = _check_deliveries(pipeline, load, changes, problems)
    record_property("duplicates", duplicates)
    print(f"exactly-once: killed at {kills} of the load, {duplicates} records delivered twice")
    if duplicates:
        problems.append(f"{duplicates} records delivered twice: exactly.once=true must deliver each change once")
    fail_on(problems, f"records after three kill -9 with exactly.once=true (seed {load.seed})")
    assert relay.stop() == 0

def _check_deliveries(pipeline, load, changes, problems, repeated=lambda coll, key, repeats: []):
    """Checks every document's first deliveries against the operations the load applied, adding
    what is wrong to problems, and returns how many records were delivered twice;
    repeated(coll, key, repeats) may add problems about a document's repeats."""
    duplicates = 0
    for coll in COLLECTIONS:
        line = timeline(changes[coll])
        problems += line.problems
        for key, ops in sorted((k, v) for (c, k), v in load.log.ops.items() if c == coll):
            first_deliveries, repeats = dedupe(line.by_key.get(key, []))
            duplicates += len(repeats)
            problems += check_document(ops, first_deliveries, pipeline.db, coll, key)
            problems += repeated(coll, key, repeats)
    return duplicates


def _capture(failure, fn, *args):
    """Runs fn in a thread, keeping its exception for the test to report."""
    try:
        fn(*args)
    except Exception as err:
        failure.append(err)


def _advanced(pipeline, start_positions):
    """Whether some collection committed a position past the one it started streaming from."""
    committed = pipeline.committed()
    return any((cluster_time(committed.get(pipeline.offset_key(c))) or pos) > pos
               for c, pos in start_positions.items())


def _wait_until(condition, what, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {what}")
        time.sleep(0.2)


def test_idle_collection_keeps_committing(pipeline, mongo):
    db = mongo[pipeline.db]
    db.create_collection("idle")
    db.create_collection("busy")
    relay = pipeline.start(pipeline.connector(["idle"]), "relay")
    pipeline.wait_streaming(relay, ["idle"])

    db.idle.insert_one({"_id": "only", "v": 1})
    changes, problems = read_changes(pipeline, ["idle"], min_records=1, quiet_s=0, timeout_s=30, running=relay)
    fail_on(problems, "the idle collection's record")
    assert [c.op for c in changes["idle"]] == ["c"], "one insert must give one record"
    inserted_at = event_position(changes["idle"][0])

    window_end = time.monotonic() + 5
    n = 0
    while time.monotonic() < window_end:  # only the uncaptured collection moves the oplog
        db.busy.insert_one({"n": n})
        n += 1
        time.sleep(0.1)
    time.sleep(1.5)  # one more heartbeat

    history = [cluster_time(v) for v in read_offsets(pipeline.kafka, pipeline.offsets_topic)
               .get(pipeline.offset_key("idle"), []) if cluster_time(v)]
    later = sorted({pos for pos in history if pos > inserted_at})
    assert len(later) >= 3, (f"the idle collection committed {later} after its insert at {inserted_at}: "
                             "with heartbeat.interval.ms=1000 and 5 s of oplog traffic, expected >= 3 positions")
    assert later[-1][0] - inserted_at[0] >= 3, (
        f"the idle collection's committed position {later[-1]} trails the oplog: its insert was at "
        f"{inserted_at} and the oplog moved for 5 s since")
    assert relay.stop() == 0


def test_history_lost_fails_then_resnapshot_recovers(pipeline, private_mongo, request):
    pipeline.mongo_uri = private_mongo(oplog_max_entries=200)
    client = MongoClient(pipeline.mongo_uri, serverSelectionTimeoutMS=10000, socketTimeoutMS=60000)
    request.addfinalizer(client.close)
    ledger = client[pipeline.db].ledger
    ledger.insert_many([{"_id": i, "v": 0} for i in range(10)])
    connector = pipeline.connector(["ledger"], {"snapshot.mode": "initial"})
    run = pipeline.start(connector, "relay-1")
    pipeline.wait_streaming(run, ["ledger"])
    ledger.insert_many([{"_id": i, "v": 0} for i in range(10, 15)])
    read_changes(pipeline, ["ledger"], min_records=15, quiet_s=0, timeout_s=30, running=run)
    assert run.stop() == 0

    # While mongorelay is down, more than 200 oplog entries push its resume point off the oplog.
    ledger.insert_many([{"_id": i, "v": 0} for i in range(15, 200)])
    for i in range(60):
        ledger.update_one({"_id": i}, {"$set": {"v": 1}})
    ledger.delete_many({"_id": {"$gte": 190}})
    before = read_topics(pipeline.kafka, [pipeline.topic("ledger")], timeout_s=30)

    failing = pipeline.start(connector, "relay-2-policy-fail")
    line = failing.wait_for_log(_history_lost_error, "an ERROR saying history was lost", timeout_s=30)
    assert "ledger" in line and "offset.lost.policy" in line, \
        f"the error must name the collection and offset.lost.policy: {line}"
    assert_stops_failed(failing, "ledger")
    after_failure = read_topics(pipeline.kafka, [pipeline.topic("ledger")], timeout_s=30)
    assert len(after_failure) == len(before), "with offset.lost.policy=fail nothing may be written after the loss"

    settings = {"snapshot.mode": "initial", "offset.lost.policy": "resnapshot"}
    recovering = pipeline.start(pipeline.connector(["ledger"], settings), "relay-3-policy-resnapshot")
    documents = documents_of(ledger)
    _wait_until(lambda: _copied_keys(pipeline, before, recovering) >= documents.keys(),
                "op r records for every document", 60)
    ledger.update_many({"_id": {"$lt": 5}}, {"$set": {"v": 2}})  # streaming goes on after the copy
    documents = documents_of(ledger)

    changes, problems = read_changes(pipeline, ["ledger"], min_records=len(before) + len(documents) + 5,
                                     running=recovering)
    fresh = _not_in(changes["ledger"], before)
    problems += final_state_problems("ledger", timeline(fresh).by_key, documents)
    fail_on(problems, "records after resnapshot")
    assert recovering.stop() == 0


def _history_lost_error(line):
    """Whether a JSON log line is an ERROR about change stream history lost."""
    if "ChangeStreamHistoryLost" not in line and "history lost" not in line.lower():
        return False
    try:
        return json.loads(line).get("level") == "ERROR"
    except ValueError:
        return False


def _not_in(changes, records):
    """The changes that are not among records (what a later run wrote)."""
    seen = {(r.topic, r.partition, r.offset) for r in records}
    return [c for c in changes if (c.record.topic, c.record.partition, c.record.offset) not in seen]


def _copied_keys(pipeline, before, running):
    """The keys of the op r records written after the records before."""
    changes, _ = read_changes(pipeline, ["ledger"], quiet_s=0, timeout_s=10, running=running)
    return {c.key_id for c in _not_in(changes["ledger"], before) if c.value is not None and c.op == "r"}


def _unreachable_mongo():
    """A connection string to a port nothing listens on, with a password that must not leak."""
    return (f"mongodb://e2e-user:e2e-s3cret@127.0.0.1:{free_port()}/"
            "?directConnection=true&serverSelectionTimeoutMS=1000&connectTimeoutMS=1000")


@pytest.mark.parametrize("settings, must_mention", [
    pytest.param({"snapshot_mode": "initial"}, ["snapshot_mode", "snapshot.mode"], id="unknown-key"),
    pytest.param({"collection.include.list": r"db\.(a"}, ["collection.include.list"], id="bad-regex"),
    pytest.param({"pipeline": '[{"$match": {"op": '}, ["pipeline"], id="bad-pipeline-json"),
    pytest.param({"mongodb.connection.string": _unreachable_mongo}, ["mongodb.connection.string"],
                 id="unreachable-mongodb"),
    pytest.param({"snapshot.mode": "sometimes"}, ["snapshot.mode", "initial"], id="unknown-enum-value"),
    pytest.param({"offset.lost.policy": "ignore", "heartbeat.interval.ms": "soon"},
                 ["offset.lost.policy", "heartbeat.interval.ms"], id="two-bad-values"),
])
def test_bad_config_is_refused(pipeline, settings, must_mention):
    settings = {k: v() if callable(v) else v for k, v in settings.items()}
    relay = pipeline.start(pipeline.connector(COLLECTIONS, settings), "relay")
    code = relay.wait(timeout_s=20)
    stderr = relay.log()
    assert code != 0, f"a bad config must stop the process with a non-zero code:\n{relay.tail()}"
    missing = [word for word in must_mention if word not in stderr]
    assert not missing, f"stderr must name {missing} (the key and the fix):\n{relay.tail()}"
    assert "e2e-s3cret" not in stderr, "the connection string's password leaked into the log"
    written = {t for t in pipeline.written_topics() if t.startswith(pipeline.prefix + ".")}
    assert not written, f"a refused config must write nothing, but topics exist: {sorted(written)}"
    for topic in (pipeline.offsets_topic, pipeline.schemas_topic):
        records = [r for r in read_topics(pipeline.kafka, [topic], timeout_s=10, wait_for_topics=False)
                   if not is_stamp(r.key)]
        assert not records, f"a refused config must write nothing but the cluster's stamp, but {topic} has records"


def _get_json(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _poll(what, fetch, ok, process, timeout_s=30):
    """fetch() until ok(value), failing with what and the process's log after timeout_s."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            last = fetch()
            if ok(last):
                return last
        except (OSError, ValueError) as e:
            last = e
        if not process.alive():
            break
        time.sleep(0.2)
    raise AssertionError(f"{what}: last seen {last!r}\n{process.tail()}")


def _restart_delays(process):
    """The delays of the "task failed; restarting it" warnings in the JSON log, in seconds, in
    order (slog writes a duration as nanoseconds)."""
    delays = []
    for line in process.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "task failed; restarting it":
            delays.append(entry.get("in", 0) / 1e9)
    return delays


def test_rest_api_and_a_failing_task_restarts_with_backoff(pipeline, mongo):
    """Standalone serves the cluster's REST API on --http-listen, and a task that fails is
    restarted with backoff like a cluster task: its status says RESTARTING with the reason,
    since when, how many attempts failed and the next attempt, and each retry waits twice as
    long as the one before, for as long as the failure lasts (errors.retry.timeout=-1)."""
    mongo[pipeline.db]["orders"].insert_one({"_id": 1})  # the collection exists: one task
    unreachable = f"http://127.0.0.1:{free_port()}"  # the task fails registering its key schema
    relay = pipeline.start(pipeline.connector(["orders"], {"schema.registry.url": unreachable}), "relay-rest")
    base = pipeline.rest_url

    names = _poll("GET /connectors lists the connector", lambda: _get_json(base + "/connectors"),
                  lambda v: v == [pipeline.name], relay)
    assert names == [pipeline.name]
    cluster = _poll("GET /cluster shows the task assigned to the one node", lambda: _get_json(base + "/cluster"),
                    lambda v: len(v["assignments"]) == 1, relay)
    assert [n["id"] for n in cluster["nodes"]] == [cluster["leader"]] and cluster["raft_state"] == "Leader", cluster
    assert cluster["assignments"][0]["task"] == f"{pipeline.db}.orders#0-of-1", cluster

    status = _poll("the task RESTARTING after its failure", lambda: _get_json(f"{base}/connectors/{pipeline.name}/status"),
                   lambda v: v["tasks"] and v["tasks"][0]["state"] == "RESTARTING", relay)
    assert status["connector"]["state"] == "RUNNING" and status["type"] == "source", status
    trace = status["tasks"][0]["trace"]
    # Statuses travel in heartbeats (every second): the first one seen may be of a later retry.
    assert "schema" in trace and "failing since" in trace and "next attempt at" in trace, trace
    assert re.search(r"\d+ failed attempt\(s\)", trace) and "errors.retry.timeout=-1" in trace, trace

    delays = _poll("two restarts, each after a longer wait", lambda: _restart_delays(relay),
                   lambda v: len(v) >= 2, relay, timeout_s=30)
    assert delays[:2] == [1, 2], f"restart delays {delays} s: want 1 s, then 2 s"
    assert relay.alive(), f"a failing task must not stop the process:\n{relay.tail()}"
