"""Acceptance of shards, parallel snapshots, resharding and bad records (issue 5), end to end.

`mongorelay standalone` runs against the shared servers; MongoDB is written with pymongo and
Kafka read with confluent-kafka and the registry's schemas. The shard every record must carry
is computed by hashedkey.py, a Python hashed-index hash written from MongoDB's hasher, never
from mongorelay's output. Each test prints its figures (run with -s to see them; they are also
in the junit properties).
"""
import datetime
import json
import math
import time

import pytest
from bson import Binary, Code, DatetimeMS, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp, json_util

from changes import ChangeDecoder, Registry, event_identity, event_position, timeline
from checks import check_collection, dedupe, fail_on
from hashedkey import hashed_key, shard_name, shard_of
from processes import assert_stops_failed
from sharded import (MixedIdEvents, OffsetsWatch, PoolLoad, RecordDecoder, SnapshotWrites, background,  # noqa: F401
                     copied, end_offsets, log_entries, plan_done, position, read_records, seed, topic_config)

COLL = "docs"
SNAPSHOT_DOCS = 200_000
MAX_BATCH_SIZE = 2048  # max.batch.size's default: the most a range may copy twice after kill -9
SNAPSHOT_PACED_S = 2   # how long the first, killed, run would take to copy everything
SNAPSHOT_RATES = {}    # shards -> documents/s, for the comparison printed by the last variant


# ------------------------------------------------------------------ the hash itself

# MongoDB's own vectors (hasher_test.cpp, seed 0; jstests/core/hash.js, seed 1; the
# $toHashedIndexKey manual page), as collected in tasks/shard/hash_test.go.
OID = ObjectId("010203040506070809101112")
HASH_VECTORS = [
    (0, 42, -944302157085130861), (0, 42.123, -944302157085130861), (0, Int64(42), -944302157085130861),
    (0, 0, 4854801880128277513), (0, 0.456, 4854801880128277513), (0, math.nan, 4854801880128277513),
    (0, 1, 5902408780260971510), (0, 1.987, 5902408780260971510), (0, -1, 1140205862565771219),
    (0, -1.789, 1140205862565771219), (0, -2**31, 6165898260261354870), (0, 2**31 - 1, 1143184177162245883),
    (0, 1.7976931348623157e308, 921523596458303250), (0, Int64(2**63 - 1), 921523596458303250),
    (0, -1.7976931348623157e308, 4532067210535695462), (0, Int64(-2**63), 4532067210535695462),
    (0, "abc", 8478485326885698097), (0, "", 2049396243249673340),
    (0, "string to hash", 763543691661428748), (0, "hello", 5347277839332858538),
    (0, {"a": "abc", "b": Int64(123)}, 4771603801758380216), (0, {}, 7980500913326740417),
    (0, ["bar", "baz", "qux"], -2938911267422831539), (0, [], 8849948234993459283),
    (0, Binary(bytes([0, 1, 2, 3, 4, 6]), 0), 7252465090394235301),
    (0, Binary(bytes([0, 1, 2, 3, 4, 6]), 0x80), 5736670452907618262),
    (0, Binary(bytes(range(16)), 4), 6084661258071355978),
    (0, OID, -5588663249627035708), (0, ObjectId("000000000000000000000000"), -4293118519463489418),
    (0, True, 6405873908747105701), (0, False, 6289544573401934092),
    (0, DatetimeMS(0x5566778811223344), 4476222765095560467),
    (0, datetime.datetime(1970, 1, 1), -1178696894582842035),
    (0, Timestamp(0x55667788, 0x11223344), 4873046866288452390), (0, Timestamp(0, 0), -7867208682377458672),
    (0, None, 2338878944348059895), (0, MinKey(), 7961148599568647290), (0, MaxKey(), 5504842513779440750),
    (0, Regex("mongodb"), -7275792090268217043), (0, Regex(".*", "i"), 7095855029187981886),
    (0, Code("func f() { return 1; }"), 6861638109178014270),
    (1, "hashthis", 6271151123721111923), (1, 2.0**63, 5744114172487291558),
    (1, 2.0**63 + 2.0**11, 1136124329541638701), (1, math.inf, 1136124329541638701),
    (1, 2.0**63 - 2.0**10, -3954856262017896439), (1, -(2.0**63), 5744114172487291558),
    (1, -(2.0**63 - 2.0**10), -1762411739488908479), (1, -math.inf, 5744114172487291558),
    (1, 0.0, 5574369198691456941), (1, Int64(0), 5574369198691456941), (1, math.nan, 5574369198691456941),
    (1, {"a": 1.0, "b": 2.0}, -7076810813311352857),
    (1, {"a": 2.0**63, "b": math.nan}, 1223292051903137684),
]


def test_python_hash_matches_mongodb_vectors():
    wrong = [f"seed {s} {v!r}: {hashed_key(v, s)} != {want}" for s, v, want in HASH_VECTORS if hashed_key(v, s) != want]
    assert not wrong, "hashedkey.py disagrees with MongoDB:\n  " + "\n  ".join(wrong)
    # ((h mod n) + n) mod n is the non-negative remainder: 42 hashes to -944302157085130861,
    # whose $mod 5 is -1, so shard 4 of 5; 42.9 and NumberLong(42) go with it.
    assert [shard_name(v, 5) for v in (42, Int64(42), 42.9)] == ["4-of-5"] * 3


# ---------------------------------------------------------------------- shared steps

def wait_shards_streaming(watch, pipeline, n, process, timeout_s=60):
    """Waits until every shard i-of-n of COLL has committed a position; returns them."""
    want = {f"{i}-of-{n}" for i in range(n)}

    def ready():
        live = watch.live_shards(pipeline.db, COLL)
        return {s: live[s] for s in want} if want <= live.keys() else None
    return watch.wait(ready, f"committed positions for shards {sorted(want)}", timeout_s, process)


def header_problems(records, ids, n_of):
    """Every record (tombstones too) must carry the shard header of its document's hash;
    n_of(record) is the shard count the run that wrote it had."""
    problems = []
    for r, key in records:
        n = n_of(r)
        want = shard_name(ids[key], n)
        if r.shard != want:
            problems.append(f"{r.topic}[{r.partition}]@{r.offset} {key}: header {r.shard!r}, the hash says {want!r}")
    return problems


def partition_problems(keyed):
    """All records of one document must be in one partition."""
    partitions = {}
    for r, key in keyed:
        partitions.setdefault(key, set()).add(r.partition)
    return [f"{key}: records in partitions {sorted(ps)}" for key, ps in partitions.items() if len(ps) > 1]


def stop_cleanly(process):
    code = process.stop(timeout_s=60)
    assert code == 0, f"SIGTERM must flush, commit and exit 0; {process.name} exited {code}:\n{process.tail()}"


# --------------------------------------------------------------- 1. four shards, one load

def test_four_shards_each_event_once_in_order(pipeline, mongo, seed, record_property):
    db = mongo[pipeline.db]
    db.create_collection(COLL)
    connector = pipeline.connector([COLL], {"shards": 4, "topic.creation.default.partitions": 4})
    relay = pipeline.start(connector, "relay-4-shards")
    with OffsetsWatch(pipeline.kafka, pipeline.offsets_topic, pipeline.name) as watch:
        wait_shards_streaming(watch, pipeline, 4, relay)

    load = PoolLoad(db, MixedIdEvents(pool=5000), 50_000, seed, batch_size=500)
    started = time.monotonic()
    log = load.run()
    record_property("load_seconds", round(time.monotonic() - started, 1))
    expected = log.expected_records(COLL)
    records = read_records(pipeline.kafka, [pipeline.topic(COLL)], min_records=expected, timeout_s=180)
    waited = time.monotonic() - started
    assert relay.alive(), f"{relay.name} exited while its records were read:\n{relay.tail()}"
    changes, problems = ChangeDecoder(Registry.at(pipeline.registry_url)).decode_all(records)
    fail_on(problems, "records that do not decode")
    print(f"{log.count} operations on {len(log.ops)} documents -> {len(records)} records "
          f"(expected {expected}) in {waited:.1f} s")
    record_property("records", len(records))

    ids = {key: ops[0].doc_id for (_, key), ops in log.ops.items()}
    keyed = [(c.record, c.key_id) for c in changes]
    problems = check_collection(log, COLL, timeline(changes), pipeline.db)
    problems += partition_problems(keyed)
    problems += header_problems(keyed, ids, lambda r: 4)
    fail_on(problems, f"records of 4 shards against the {log.count} operations (seed {seed})")
    used = {c.record.shard for c in changes}
    assert used == {f"{i}-of-4" for i in range(4)}, f"records came from shards {sorted(used)}"
    stop_cleanly(relay)


# --------------------------------------------------- 2. snapshot, writes, kill -9, resume

@pytest.mark.parametrize("shards", [1, 4])
def test_snapshot_200k_with_writes_and_kill(pipeline, mongo, background, seed, record_property, shards):
    began = time.monotonic()
    coll = mongo[pipeline.db][COLL]
    for start in range(0, SNAPSHOT_DOCS, 20_000):
        coll.insert_many([{"_id": i, "g": i % 97, "s": "snapshot"} for i in range(start, start + 20_000)],
                         ordered=False)
    settings = {"snapshot.mode": "initial", "shards": shards, "topic.creation.default.partitions": 4}
    # Unpaced, a fast machine copies the 200,000 documents before the test sees half of them
    # committed (progress is committed a few times a second). The first run is paced to about
    # SNAPSHOT_PACED_S; the resumed one runs unpaced, and its rate is the one reported.
    paced = {"snapshot.max.documents.per.second": math.ceil(SNAPSHOT_DOCS / SNAPSHOT_PACED_S / shards)}
    first = pipeline.start(pipeline.connector([COLL], settings | paced), "relay-1-killed")
    writes = SnapshotWrites(coll, SNAPSHOT_DOCS, seed)
    with OffsetsWatch(pipeline.kafka, pipeline.offsets_topic, pipeline.name) as watch:
        # The plan's keys are committed after its start point is recorded: every write from
        # here on is a change the stream must deliver after the copy.
        watch.wait(lambda: watch.snapshot_plan(pipeline.db, COLL), "a snapshot plan", 60, first)
        writer = background(lambda stop: writes.run_until(stop, 0.01), "writes during the snapshot")
        half = SNAPSHOT_DOCS * 0.45

        def half_way():
            plan = watch.snapshot_plan(pipeline.db, COLL)
            return plan if copied(plan) >= half or plan_done(plan) else None
        at_kill = watch.wait(half_way, f"{half:.0f} documents copied", 120, first)
        first.kill()
        killed_at = time.time()
        assert not plan_done(at_kill), (
            f"the copy finished before the test could kill it half way (progress seen: {copied(at_kill)})")
        boundary = end_offsets(pipeline.kafka, pipeline.topic(COLL))
        print(f"shards={shards}: kill -9 with {copied(at_kill)} of {SNAPSHOT_DOCS} copied, ranges "
              f"{ {r: (v['snapshot']['copied'], v['snapshot']['done']) for r, v in sorted(at_kill.items())} }")
        record_property("copied_at_kill", copied(at_kill))
        print(f"shards={shards}: {time.monotonic() - began:.1f} s into the test at the kill")

        second = pipeline.start(pipeline.connector([COLL], settings), "relay-2-resumed")
        done = watch.wait(lambda: (p := watch.snapshot_plan(pipeline.db, COLL)) and plan_done(p) and p,
                          "every snapshot range done after the restart", 120, second)
        done_at = time.time()
        replanned = {r: position(v) for r, v in done.items()} != {r: position(v) for r, v in at_kill.items()}
        assert not replanned, (f"the restart planned the snapshot again instead of resuming it: ranges "
                               f"{ {r: position(v) for r, v in at_kill.items()} } became "
                               f"{ {r: position(v) for r, v in done.items()} }")
        wait_shards_streaming(watch, pipeline, shards, second)
        print(f"shards={shards}: {time.monotonic() - began:.1f} s into the test, streaming after the copy")
    time.sleep(1)  # more writes, now streamed
    writer.finish()

    deleted_initial = sum(1 for i, ops in writes.ops.items() if i < SNAPSHOT_DOCS and any(op == "d" for op, _ in ops))
    at_least = SNAPSHOT_DOCS - deleted_initial + writes.expected_change_records()
    records = read_records(pipeline.kafka, [pipeline.topic(COLL)], min_records=at_least, timeout_s=180)
    assert second.alive(), f"{second.name} exited while its records were read:\n{second.tail()}"
    events, problems = per_document(records, RecordDecoder(pipeline.registry_url))  # its registry decodes
    stop_cleanly(second)
    print(f"shards={shards}: {len(records)} records read (at least {at_least} expected), "
          f"{time.monotonic() - began:.1f} s into the test")
    duplicates, copied_by_run = 0, [0, 0]
    for key, evs in events.items():
        reads = [e for e in evs if e.op == "r"]
        duplicates += max(0, len(reads) - 1)
        for e in reads:
            copied_by_run[e.offset >= boundary[e.partition]] += 1
    problems += snapshot_problems(events, writes)
    ids = {json.dumps({"$numberInt": str(i)}, separators=(",", ":")): i for i in range(writes.next_id)}
    wrong_headers = header_problems([(e.record, key) for key, evs in events.items() for e in evs], ids,
                                    lambda r: shards)
    wrong_reads = [(ids[key], e.record.shard) for key, evs in events.items() for e in evs
                   if e.op == "r" and e.record.shard != shard_name(ids[key], shards)]
    copier = range_copier(at_kill, shards)
    by_copier = sum(1 for doc_id, header in wrong_reads if header == copier(doc_id))

    rate_first, rate = snapshot_rates(first, second, killed_at, done_at, copied_by_run)
    SNAPSHOT_RATES[shards] = rate
    record_property("snapshot_docs_per_s", round(rate))
    record_property("duplicates_after_kill", duplicates)
    print(f"shards={shards}: {duplicates} documents copied twice after kill -9 (bound: fewer than "
          f"{MAX_BATCH_SIZE * shards}); snapshot {rate:.0f} documents/s resumed unpaced ({rate_first:.0f} "
          f"paced before the kill at {next(iter(paced.values()))}/s per task); {writes.count} writes during and after the copy")
    if len(SNAPSHOT_RATES) > 1:
        print("snapshot documents/s: " + ", ".join(f"{n} shard{'s' * (n > 1)}: {r:.0f}"
                                                   for n, r in sorted(SNAPSHOT_RATES.items())))
    fail_on(problems, f"snapshot of {SNAPSHOT_DOCS} documents with {writes.count} writes, shards={shards} (seed {seed})")
    limit = SNAPSHOT_DOCS / SNAPSHOT_PACED_S
    assert rate_first < limit * 1.25, (
        f"the paced run copied {rate_first:.0f} documents/s, over snapshot.max.documents.per.second "
        f"({limit / shards:.0f} per task, {limit:.0f} in all)")
    assert duplicates < MAX_BATCH_SIZE * shards, (
        f"{duplicates} documents copied twice after kill -9: the copy must resume from its committed "
        f"progress, repeating fewer than one range batch ({MAX_BATCH_SIZE}) per shard ({shards})")
    reads = sum(copied_by_run)
    fail_on(wrong_headers, f"shard headers: {len(wrong_reads)} of the {reads} snapshot records carry a shard "
                           f"other than their document's hash ({by_copier} of them the shard that copied their "
                           f"_id range, range r -> shard r mod {shards})")


class Event:
    """One non-tombstone record of the snapshot test, decoded just enough."""
    __slots__ = ("record", "op", "w")

    def __init__(self, record, op, w):
        self.record, self.op, self.w = record, op, w

    @property
    def partition(self):
        return self.record.partition

    @property
    def offset(self):
        return self.record.offset


def per_document(records, decoder):
    """key -> the document's records in log order (tombstones kept as op "tombstone"), and the
    records that do not decode."""
    events, problems = {}, []
    for r in records:
        try:
            key = decoder.key_id(r)
            value = decoder.value(r)
        except Exception as err:
            problems.append(f"{r.topic}[{r.partition}]@{r.offset}: does not decode: {err!r}")
            if len(problems) > 20:
                break
            continue
        if value is None:
            events.setdefault(key, []).append(Event(r, "tombstone", None))
            continue
        op = value["op"]
        w = None
        if op in ("c", "r"):
            w = (value.get("after") or {}).get("w")
        elif op == "u":
            updated = (value.get("updateDescription") or {}).get("updatedFields")
            w = json_util.loads(updated).get("w") if updated else None
        events.setdefault(key, []).append(Event(r, op, w))
    for evs in events.values():
        evs.sort(key=lambda e: e.offset)
    return events, problems


def snapshot_problems(events, writes):
    """Every document of the collection appears; every change made during or after the copy
    appears once, in order, after the document's snapshot record(s)."""
    problems = []
    for doc_id in range(writes.next_id):
        key = json.dumps({"$numberInt": str(doc_id)}, separators=(",", ":"))
        evs = events.get(key, [])
        where = f"_id {doc_id}"
        if len({e.partition for e in evs}) > 1:
            problems.append(f"{where}: records in partitions {sorted({e.partition for e in evs})}")
        reads = [e for e in evs if e.op == "r"]
        changes = [e for e in evs if e.op not in ("r", "tombstone")]
        want = [(op, w if op != "d" else None) for op, w in writes.ops.get(doc_id, [])]
        got = [(e.op, e.w if e.op != "d" else None) for e in changes]
        if got != want:
            i = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
            problems.append(f"{where}: writes {want} but change records {got}: first difference at #{i}")
        if reads and changes and max(e.offset for e in reads) > min(e.offset for e in changes):
            problems.append(f"{where}: a change (offset {min(e.offset for e in changes)}) precedes its "
                            f"snapshot record (offset {max(e.offset for e in reads)})")
        deleted = any(op == "d" for op, _ in writes.ops.get(doc_id, []))
        if doc_id < writes.initial and not reads and not deleted:
            problems.append(f"{where}: existed before the snapshot, never deleted, but has no snapshot record")
        tombs = [i for i, e in enumerate(evs) if e.op == "tombstone"]
        for i in tombs:
            if i == 0 or evs[i - 1].op != "d":
                problems.append(f"{where}: a tombstone at offset {evs[i].offset} follows no delete")
    known = {json.dumps({"$numberInt": str(i)}, separators=(",", ":")) for i in range(writes.next_id)}
    problems += [f"{key}: records for a document never written" for key in events.keys() - known]
    return problems


def range_copier(plan, shards):
    """doc_id -> the header of the shard that copies its _id range (range r of m: shard r mod n),
    from the plan's bounds (integer _ids here)."""
    bounds = []
    for r, v in plan.items():
        snap = v["snapshot"]
        low = json_util.loads(snap["min_id"]) if snap.get("min_id") else None
        high = json_util.loads(snap["max_id"]) if snap.get("max_id") else None
        bounds.append((int(r.split("-of-")[0]), low, high))

    def copier(doc_id):
        for r, low, high in bounds:
            if (low is None or doc_id >= low) and (high is None or doc_id < high):
                return f"{r % shards}-of-{shards}"
        return None
    return copier


def snapshot_rates(first, second, killed_at, done_at, copied_by_run):
    """Documents/s copied: by the first (paced) run from its plan to the kill, and by the
    resumed (unpaced) run from its first range to its last. The times
    come from the process logs ("snapshot planned", "copying a snapshot range", "snapshot range
    copied"); where a log does not say, from when the test started, killed and saw the end."""
    def when(process, msg, pick, default):
        times = [_log_time(e) for e in log_entries(process) if e.get("msg") == msg and "time" in e]
        return pick(times) if times else default

    started = time.time() - (time.monotonic() - first.started)
    restarted = time.time() - (time.monotonic() - second.started)
    first_s = max(killed_at - when(first, "snapshot planned", min, started), 1e-3)
    resumed_s = max(when(second, "snapshot range copied", max, done_at)
                    - when(second, "copying a snapshot range", min, restarted), 1e-3)
    return copied_by_run[0] / first_s, copied_by_run[1] / resumed_s


def _log_time(entry):
    """A JSON log entry's time (RFC 3339, nanoseconds) as a Unix timestamp."""
    head, _, frac = entry["time"].rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()


# -------------------------------------------------------------- 3. reshard 2 -> 5 -> 3

def test_reshard_2_5_3_under_load(pipeline, mongo, background, seed, record_property):
    db = mongo[pipeline.db]
    db.create_collection(COLL)
    load = PoolLoad(db, MixedIdEvents(pool=2000, kinds=("int", "long", "objectid", "document")), 10**9, seed,
                    batch_size=100)
    topic = pipeline.topic(COLL)
    phases = [2, 5, 3]
    boundaries = []  # per phase: where each partition ended when its run stopped
    final = {}       # per phase: each shard's position committed when its run stopped
    watch = writer = relay = None
    try:
        for k, n in enumerate(phases):
            relay = pipeline.start(pipeline.connector([COLL], {"shards": n, "topic.creation.default.partitions": 4}),
                                   f"relay-{k + 1}-{n}-shards")
            watch = watch or OffsetsWatch(pipeline.kafka, pipeline.offsets_topic, pipeline.name)
            wait_shards_streaming(watch, pipeline, n, relay)
            if writer is None:
                writer = background(lambda stop: load.run_until(stop, 0.05), "load")
            else:
                old = phases[k - 1]
                watch.wait(lambda: old_keys_retired(watch, pipeline, old, n), f"the {old} old shard keys "
                           f"tombstoned once the {n} new shards passed them (i-of-{n} live, no i-of-{old})", 90, relay)
            ops_at_start = load.log.count
            watch.wait(lambda: load.log.count >= ops_at_start + 3000 or writer.check(), f"3000 more operations "
                       f"with {n} shards", 90, relay)
            if k < len(phases) - 1:
                stop_cleanly(relay)
                boundaries.append(end_offsets(pipeline.kafka, topic))
                watch.catch_up()
                final[n] = {int(s.split("-of-")[0]): position(v) for s, v in watch.live_shards(pipeline.db, COLL).items()
                            if s.endswith(f"-of-{n}")}
                time.sleep(1)  # the load goes on while no shard runs
        writer.finish()
        live = watch.live_shards(pipeline.db, COLL)
    finally:
        if watch is not None:
            watch.close()
    assert set(live) == {f"{i}-of-3" for i in range(3)}, f"live shard keys at the end: {sorted(live)}"

    log = load.log
    expected = log.expected_records(COLL)
    records = read_records(pipeline.kafka, [topic], min_records=expected, timeout_s=180)
    assert relay.alive(), f"{relay.name} exited while its records were read:\n{relay.tail()}"
    changes, problems = ChangeDecoder(Registry.at(pipeline.registry_url)).decode_all(records)
    stop_cleanly(relay)  # after decoding: the registry lives in the process
    fail_on(problems, "records that do not decode")
    print(f"{log.count} operations on {len(log.ops)} documents across shards 2 -> 5 -> 3 -> "
          f"{len(records)} records (expected {expected})")
    record_property("operations", log.count)

    def phase_of(r):
        return next((phases[i] for i, b in enumerate(boundaries) if r.offset < b.get(r.partition, 0)), phases[-1])

    ids = {key: ops[0].doc_id for (_, key), ops in log.ops.items()}
    keyed = [(c.record, c.key_id) for c in changes]
    line = timeline(changes)
    problems = check_collection(log, COLL, line, pipeline.db)
    problems += partition_problems(keyed)
    problems += header_problems(keyed, ids, phase_of)
    fail_on(problems, f"records across resharding 2 -> 5 -> 3 (seed {seed}); "
                      f"{repeats_by_phase(line, phase_of, ids, final)}")
    for n in phases:
        seen = {c.record.shard for c in changes if phase_of(c.record) == n}
        assert seen == {f"{i}-of-{n}" for i in range(n)}, f"the {n}-shard run wrote records of shards {sorted(seen)}"


def repeats_by_phase(line, phase_of, ids, final):
    """Which runs delivered an event again (same resume token), and where the event stands against
    the position its shard of the first run committed when that run stopped: the diagnosis."""
    counts = {}
    for key, events in line.by_key.items():
        _, repeats = dedupe(events)
        first = {}
        for ev in events:
            first.setdefault(event_identity(ev), ev)
        for ev in repeats:
            a, b = phase_of(first[event_identity(ev)].record), phase_of(ev.record)
            committed = final.get(a, {}).get(shard_of(ids[key], a))
            where = ("no committed position" if committed is None else
                     "after its old shard's final commit" if event_position(ev) > committed else
                     "at or before its old shard's final commit")
            counts[(a, b, where)] = counts.get((a, b, where), 0) + 1
    if not counts:
        return "no event delivered twice"
    return "events delivered twice: " + "; ".join(
        f"{n} first by the {a}-shard run, again by the {b}-shard run, {where}"
        for (a, b, where), n in sorted(counts.items()))


def old_keys_retired(watch, pipeline, old, new):
    keys = watch.keys(pipeline.db, COLL, "shard")
    live_new = all(keys.get(f"{i}-of-{new}") is not None for i in range(new))
    old_keys = [keys.get(f"{i}-of-{old}", "never") for i in range(old)]
    return live_new and all(v is None for v in old_keys)


# ---------------------------------------------- 4. oversize policies and name collisions

COLLIDING = {"_id": "names", "a.b": 1, "a_b": "two", "a-b": 3.5, "$x": True, "1x": [1, 2], "é": {"n": 1},
             "a b": "space", "sub": {"a.b": 10, "a_b": 20, "a-b": Int64(30)}}
HUGE = 2 * 1024 * 1024


def test_oversize_policies_and_collisions(pipeline, mongo):
    big = mongo[pipeline.db]["big"]
    big.insert_one({"_id": "existing", "v": 0})  # the collection exists when mongorelay starts
    topic, dlq = pipeline.topic("big"), f"{pipeline.prefix}.dlq"
    failing = pipeline.start(pipeline.connector(["big"], {"oversize.handling": "fail"}), "relay-oversize-fail")
    with OffsetsWatch(pipeline.kafka, pipeline.offsets_topic, pipeline.name) as watch:
        watch.wait(lambda: watch.live_shards(pipeline.db, "big"), "a committed position", 60, failing)
    limit = int(topic_config(pipeline.kafka, topic, "max.message.bytes"))
    assert limit <= 1024 * 1024 + 64, f"{topic} has max.message.bytes {limit}: the test needs Kafka's 1 MB default"

    # Names that collide once sanitized for Avro: decoded with the registry's schema, the document
    # must come back whole, each field named back through "mongodb.name".
    big.insert_one(dict(COLLIDING))
    records = read_records(pipeline.kafka, [topic], min_records=1, quiet_s=0.5, timeout_s=60)
    changes, problems = ChangeDecoder(Registry.at(pipeline.registry_url)).decode_all(records)
    problems += collision_problems(timeline(changes).by_key.get('"names"', []), big.find_one({"_id": "names"}))

    # oversize.handling=fail: the task fails naming the document, and writes nothing for it.
    # One write at a time, as an application makes them: "before" usually reaches mongorelay in
    # a change stream batch of its own, just ahead of the batch that fails.
    for doc in ({"_id": "before", "v": 1}, {"_id": "huge-1", "blob": "x" * HUGE}, {"_id": "after", "v": 2}):
        big.insert_one(doc)
    failed = failing.wait_for_log(_task_failed, 'an ERROR "task FAILED"', timeout_s=60)
    if "huge-1" not in failed:
        problems.append(f"the task's error must name the document key huge-1: {failed}")
    decoder = RecordDecoder(pipeline.registry_url)  # the registry lives in the process: read first
    if '"huge-1"' in [decoder.key_id(r) for r in read_records(pipeline.kafka, [topic], quiet_s=0.5, timeout_s=30)]:
        problems.append("oversize.handling=fail wrote a record for the oversize document")
    committed_by_failed = (pipeline.committed().get(pipeline.offset_key("big")) or {}).get("cluster_time")
    assert_stops_failed(failing, "big")

    # oversize.handling=skip: a reference goes to the dead letter topic; the documents around it
    # are delivered (the failed run committed nothing past what consumers can read).
    settings = {"oversize.handling": "skip", "errors.deadletterqueue.topic.name": dlq}
    skipping = pipeline.start(pipeline.connector(["big"], settings), "relay-oversize-skip")
    references = read_records(pipeline.kafka, [dlq], min_records=1, quiet_s=1, timeout_s=60)
    records = read_records(pipeline.kafka, [topic], min_records=3, quiet_s=2, stall_s=10, timeout_s=60)
    assert skipping.alive(), f"{skipping.name} exited:\n{skipping.tail()}"
    changes, undecodable = ChangeDecoder(Registry.at(pipeline.registry_url)).decode_all(records)
    problems += undecodable
    by_key = timeline(changes).by_key
    if '"huge-1"' in by_key:
        problems.append("oversize.handling=skip wrote a record for the oversize document")
    for key in ('"names"', '"before"', '"after"'):
        ops = [c.op for c in by_key.get(key, [])]
        if not ops or set(ops) != {"c"}:
            problems.append(f"{key} must be delivered as an insert: its records are {ops} (keys in the topic: "
                            f"{sorted(by_key)}; the failed run had committed the position {committed_by_failed})")
    problems += dead_letter_problems(references)
    fail_on(problems, "oversize handling and colliding field names")
    stop_cleanly(skipping)


def _task_failed(line):
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return entry.get("level") == "ERROR" and entry.get("msg") == "task FAILED"


def dead_letter_problems(references):
    """One reference to huge-1 in the dead letter topic, without the document's body."""
    problems = []
    mine = [r for r in references if r.key is not None and b"huge-1" in r.key]
    if len(mine) != 1:
        return [f"expected one dead letter reference to huge-1, found {len(mine)} among {len(references)} records"]
    r = mine[0]
    if r.value is None or len(r.value) > 4096 or b"x" * 64 in r.value:
        problems.append(f"the dead letter reference must not carry the body: {len(r.value or b'')} bytes")
    try:
        ref = json.loads(r.value)
    except (TypeError, ValueError):
        return problems + [f"the dead letter reference is not JSON: {r.value[:200]!r}"]
    if ref.get("reason") != "oversize" or "huge-1" not in str(ref.get("id")):
        problems.append(f"the reference must say oversize and name huge-1: {ref}")
    if not isinstance(ref.get("bytes"), int) or ref["bytes"] <= HUGE:
        problems.append(f"the reference must give the record's size (over {HUGE} bytes): {ref}")
    return problems


def collision_problems(events, document):
    """The document whose names collide after sanitizing decodes losslessly, every field named back
    to the original through "mongodb.name"."""
    if document is None:
        return ["the colliding document is not in MongoDB (did the server refuse its names?)"]
    if not events or {e.op for e in events} != {"c"}:
        return [f"the colliding document must give insert records, got {[e.op for e in events]}"]
    ev = events[0]
    schema = ev.writer.tree
    after_type = schema.field_type("after")
    problems = schema.diff(document, ev.value["after"], after_type, "after")
    problems += _names_problems(schema, after_type, document, "after")
    return problems


def _names_problems(schema, t, document, path):
    """Each field of document is exactly one field of the record type t, found by "mongodb.name"
    (or its own name when that is a valid Avro name), recursively."""
    record = _record_of(schema, t)
    if record is None:
        return [f"{path}: no record type in {t}"]
    fields = record["fields"]
    names = [f["name"] for f in fields]
    originals = [f.get("mongodb.name", f["name"]) for f in fields]
    problems = [f"{path}: field names repeat: {names}"] if len(set(names)) != len(names) else []
    for key, value in document.items():
        matches = [f for f, o in zip(fields, originals) if o == key]
        if len(matches) != 1:
            problems.append(f"{path}: {len(matches)} fields stand for {key!r} (fields: "
                            f"{[(f['name'], f.get('mongodb.name')) for f in fields]})")
            continue
        if matches[0]["name"] != key and "mongodb.name" not in matches[0]:
            problems.append(f"{path}: field {matches[0]['name']!r} stands for {key!r} without a mongodb.name property")
        if isinstance(value, dict):
            problems += _names_problems(schema, matches[0]["type"], value, f"{path}.{key}")
    return problems


def _record_of(schema, t):
    t = schema.resolve(t)
    if isinstance(t, list):
        return next((r for r in (_record_of(schema, b) for b in t) if r is not None), None)
    if isinstance(t, dict) and t.get("type") == "record":
        return t
    return None
