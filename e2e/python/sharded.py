"""What the sharding, snapshot and resharding acceptance tests (test_shards.py) share.

- Reading a collection's topic with each record's headers (the shard header), and where each
  partition ends (to tell apart what each run of mongorelay wrote).
- OffsetsWatch: a consumer that tails the offsets topic, so a test reacts within a few
  milliseconds to snapshot progress (to kill -9 half way through a copy paced to take about
  two seconds) and sees shard keys appear and be tombstoned.
- PoolLoad: workload.MixedLoad on one collection whose _ids come from a fixed pool of mixed
  types (MixedIdEvents: int32, int64, string or ObjectId, compound documents), so every shard
  gets documents of every id type.
- SnapshotWrites: the writes made while a snapshot copies, with their per-document log.
- RecordDecoder: fastavro decoding with the registry's writer schemas, for topics of 200,000
  records where decoding each twice (changes.ChangeDecoder) would cost the time budget.
- Fixtures: the load's seed, and background threads stopped before the pipeline is torn down.
"""
import io
import json
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import fastavro
import pytest
from bson import Binary, Int64, ObjectId
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType
from confluent_kafka.schema_registry import SchemaRegistryClient
from pymongo import DeleteOne, InsertOne, UpdateOne

from changes import schema_id_of
from kafka_io import Record, admin, is_stamp
from workload import Events, MixedLoad, canonical_json

SHARD_HEADER = "mongorelay.shard"


# ------------------------------------------------------------------------- fixtures

@pytest.fixture
def seed(record_property):
    """The load's seed: E2E_SEED to replay a failure, else random; shown in the report."""
    value = int(os.environ.get("E2E_SEED") or random.randrange(1 << 31))
    record_property("seed", value)
    print(f"workload seed {value} (E2E_SEED={value} replays it)")
    return value


@pytest.fixture
def background(pipeline):
    """Starts functions in threads; at the end of the test each is told to stop (its stop event
    is set) and joined, before the pipeline's database and topics are removed."""
    started = []

    def start(fn, name):
        worker = Background(fn, name)
        started.append(worker)
        worker.thread.start()
        return worker

    yield start
    for worker in started:
        worker.stop.set()
    for worker in started:
        worker.thread.join(timeout=60)


class Background:
    """One thread running fn(stop), keeping its exception for the test to report."""

    def __init__(self, fn, name):
        self.name, self.stop, self.error = name, threading.Event(), None
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)

    def _run(self, fn):
        try:
            fn(self.stop)
        except Exception as err:  # reported by finish()
            self.error = err

    def finish(self, timeout_s=60):
        """Tells the thread to stop, waits for it, and fails if it failed."""
        self.stop.set()
        self.thread.join(timeout=timeout_s)
        assert not self.thread.is_alive(), f"{self.name} did not stop within {timeout_s} s"
        self.check()

    def check(self):
        if self.error is not None:
            raise AssertionError(f"{self.name} failed: {self.error!r}") from self.error


# ------------------------------------------------------------------ reading records

@dataclass(frozen=True)
class Delivered(Record):
    """A record with its headers (name -> value as text)."""
    headers: dict = field(default_factory=dict)

    @property
    def shard(self):
        return self.headers.get(SHARD_HEADER)


def _consumer(bootstrap, **overrides):
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": f"e2e-shards-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "fetch.wait.max.ms": 100,
    }
    config.update(overrides)
    return Consumer(config)


def _topic_partitions(consumer, topic, deadline):
    """The partitions of topic, waiting until it exists (None if it never did by deadline)."""
    while True:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is not None and not metadata.error and metadata.partitions:
            return sorted(metadata.partitions)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def read_records(bootstrap, topics, *, min_records=0, quiet_s=2.0, stall_s=20.0, timeout_s=120.0):
    """Every record of topics from the beginning, with headers, in log order per partition.

    Stops as kafka_io.read_topics does: every partition at its end, min_records read and nothing
    new for quiet_s; or nothing new for stall_s short of min_records; or at the deadline. The
    caller's checks say what is missing.
    """
    deadline = time.monotonic() + timeout_s
    consumer = _consumer(bootstrap)
    try:
        partitions = set()
        for topic in topics:
            found = _topic_partitions(consumer, topic, deadline)
            if found is None:
                raise AssertionError(f"topic {topic} does not exist after {timeout_s} s")
            partitions |= {(topic, p) for p in found}
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in sorted(partitions)])
        records, at_end, last_new = [], set(), time.monotonic()
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                tp = (msg.topic(), msg.partition())
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(tp)
                        continue
                    raise RuntimeError(f"consume {tp}: {msg.error()}")
                at_end.discard(tp)
                last_new = time.monotonic()
                headers = {k: (v.decode(errors="replace") if v is not None else None)
                           for k, v in (msg.headers() or [])}
                records.append(Delivered(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                                         headers))
            silent = time.monotonic() - last_new
            if at_end >= partitions and (silent >= quiet_s and len(records) >= min_records or silent >= stall_s):
                break
        return records
    finally:
        consumer.close()


def end_offsets(bootstrap, topic, timeout_s=30):
    """Where each partition of topic ends now (its high watermark): the next record's offset."""
    consumer = _consumer(bootstrap)
    try:
        partitions = _topic_partitions(consumer, topic, time.monotonic() + timeout_s)
        if partitions is None:
            raise AssertionError(f"topic {topic} does not exist after {timeout_s} s")
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


# ------------------------------------------------------------------- offsets topic

@dataclass(frozen=True)
class OffsetKey:
    """A parsed offsets topic key: kind "shard" or "snapshot", and its "i-of-n"."""
    connector: str
    db: str
    coll: str
    kind: str
    slice: str


def parse_offset_key(raw):
    connector, fields = json.loads(raw)
    kind = "snapshot" if "snapshot" in fields else "shard"
    return OffsetKey(connector, fields["db"], fields["coll"], kind, fields[kind])


class OffsetsWatch:
    """Tails a connector's offsets topic: the latest value of each key (None once tombstoned),
    and every value each key ever had, with when this watch saw it."""

    def __init__(self, bootstrap, topic, connector, timeout_s=30):
        self.connector = connector
        self.latest, self.history = {}, {}
        self._consumer = _consumer(bootstrap, **{"fetch.wait.max.ms": 10, "enable.partition.eof": False})
        partitions = _topic_partitions(self._consumer, topic, time.monotonic() + timeout_s)
        if partitions is None:
            self._consumer.close()
            raise AssertionError(f"the offsets topic {topic} was not created within {timeout_s} s")
        self._partitions = [TopicPartition(topic, p) for p in partitions]
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])

    def close(self):
        self._consumer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def poll(self, timeout_s=0.02):
        """Takes in what has arrived (waiting up to timeout_s for the first of it)."""
        for msg in self._consumer.consume(num_messages=10000, timeout=timeout_s):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"consume the offsets topic: {msg.error()}")
            if is_stamp(msg.key()):
                continue
            key = parse_offset_key(msg.key())
            if key.connector != self.connector:
                continue
            value = None if msg.value() is None else json.loads(msg.value())
            self.latest[key] = value
            self.history.setdefault(key, []).append((time.monotonic(), value))

    def catch_up(self, timeout_s=30):
        """Polls until everything written to the topic so far has been taken in."""
        deadline = time.monotonic() + timeout_s
        ends = {tp.partition: self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._partitions}
        while True:
            self.poll()
            done = all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0
                       for tp in self._consumer.position(self._partitions))
            if done:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"the offsets topic was not read to its end within {timeout_s} s")

    def keys(self, db, coll, kind):
        """The latest value per "i-of-n" of a collection's keys of kind (None: tombstoned)."""
        return {k.slice: v for k, v in self.latest.items() if (k.db, k.coll, k.kind) == (db, coll, kind)}

    def live_shards(self, db, coll):
        """The shard keys that hold a position now, "i-of-n" -> value."""
        return {s: v for s, v in self.keys(db, coll, "shard").items() if v is not None}

    def snapshot_plan(self, db, coll):
        """The live snapshot range keys of the newest complete plan, "r-of-m" -> value ({} if none)."""
        by_count = {}
        for s, v in self.keys(db, coll, "snapshot").items():
            if v is not None:
                by_count.setdefault(int(s.split("-of-")[1]), {})[s] = v
        complete = [ranges for m, ranges in by_count.items() if len(ranges) == m]
        return max(complete, key=lambda ranges: position(next(iter(ranges.values()))), default={})

    def wait(self, condition, what, timeout_s, process=None):
        """Polls until condition() returns something truthy, and returns it; fails after timeout_s
        or as soon as process (if given) has exited, with its log."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.poll()
            result = condition()
            if result:
                return result
            if process is not None and not process.alive():
                raise AssertionError(f"{process.name} exited with {process.popen.returncode} while waiting "
                                     f"for {what}:\n{process.tail()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"not within {timeout_s} s: {what}; offsets keys now:\n  "
                                     + "\n  ".join(f"{k.kind} {k.slice}: {_brief(v)}" for k, v in
                                                   sorted(self.latest.items(), key=lambda kv: (kv[0].kind, kv[0].slice)))
                                     + (f"\n{process.tail()}" if process is not None else ""))


def _brief(value):
    if value is None:
        return "tombstone"
    ct = value.get("cluster_time")
    snap = value.get("snapshot")
    return f"cluster_time={ct}" + (f" snapshot copied={snap.get('copied')} done={snap.get('done')}" if snap else "")


def position(value):
    """The (t, i) position an offset value holds."""
    ct = value.get("cluster_time") or {"t": 0, "i": 0}
    return ct["t"], ct["i"]


def copied(plan):
    """How many documents the ranges of a snapshot plan have copied, by their committed progress."""
    return sum(v["snapshot"]["copied"] for v in plan.values())


def plan_done(plan):
    return bool(plan) and all(v["snapshot"]["done"] for v in plan.values())


# --------------------------------------------------------------------- the process log

def log_entries(process):
    """The JSON lines of a process's log, parsed (other lines are skipped)."""
    entries = []
    for line in process.log().splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass
    return entries


# ------------------------------------------------------------------------ the loads

class MixedIdEvents(Events):
    """workload.Events documents in one collection "docs", _ids from a pool of `pool` values of
    several types in equal shares (kinds: int32, int64 beyond the int32 range, string, ObjectId,
    a compound document {t, n}).

    Mixes that trip over typed-schema decoding rather than sharding are refused: string with
    ObjectId (one Avro string branch: records written before the union decode, with the latest
    schema, without their ObjectId hint, as tasks/avroschema/doc.go says and avrodoc reports),
    string with binary (fastavro resolves an old bytes writer branch to the latest union's
    string branch, which comes first, and fails on the UTF-8), int with double (int widens to
    double, and avrodoc wants an int32 back as an int).
    """
    name = "docs"
    KINDS = ("int", "long", "string", "document")
    CLASHES = ({"string", "objectid"}, {"string", "binary"}, {"int", "double"})

    def __init__(self, pool=5000, kinds=KINDS):
        assert not any(clash <= set(kinds) for clash in self.CLASHES), f"{kinds} mixes types that clash"
        self.pool, self.kinds = pool, kinds

    def new_id(self, rng):
        return self.id_at(rng.randrange(self.pool))

    def id_at(self, k):
        kind = self.kinds[k * len(self.kinds) // self.pool]
        if kind == "int":
            return k
        if kind == "long":
            return Int64(2**40 + k)
        if kind == "document":
            return {"t": f"t{k % 7}", "n": k}
        if kind == "string":
            return f"s-{k:05d}"
        if kind == "objectid":
            return ObjectId(f"65a0{k:020x}")
        if kind == "binary":
            return Binary(uuid.UUID(int=(0x6ba7b810 << 96) | k).bytes, 0)
        raise ValueError(f"unknown _id kind {kind!r}")


class PoolLoad(MixedLoad):
    """MixedLoad on the one collection of shape, whose _ids come from a bounded pool.

    The operation mix leans to inserts while fewer than `fill` of the pool's ids are live and
    to deletes above it, so inserts always find a free id and most of the pool is touched.
    """

    FILLING = {"insert": 60, "update": 25, "replace": 10, "delete": 5}
    FULL = {"insert": 15, "update": 45, "replace": 15, "delete": 25}

    def __init__(self, db, shape, total_ops, seed, batch_size=500, fill=0.7):
        super().__init__(db, total_ops, seed, batch_size)
        self.shape = shape
        self.live[shape.name] = {}
        self.target = int(shape.pool * fill)
        assert self.target + batch_size < shape.pool, "a batch of inserts could exhaust the pool"

    def round(self, shape=None):
        shape = shape or self.shape
        self.WEIGHTS = self.FILLING if len(self.live[shape.name]) < self.target else self.FULL
        super().round(shape)

    def run(self, pause_s=0.0):
        while self.log.count < self.total:
            self.round()
            time.sleep(pause_s)
        return self.log

    def run_until(self, stop, pause_s):
        """Applies batches until stop (a threading.Event) is set; the model stays consistent."""
        while not stop.is_set() and self.log.count < self.total:
            self.round()
            stop.wait(pause_s)
        return self.log


@dataclass
class SnapshotWrites:
    """Writes to a collection of documents {_id: 0..n-1} while it is being copied: updates,
    deletes, and inserts of new _ids after n. Every update sets w to a number no other write
    uses, so its event can be told from the others; ops holds each document's writes in order
    as (op, w) with op the envelope's c/u/d."""
    coll: object
    initial: int
    seed: int
    batch_size: int = 200
    ops: dict = field(default_factory=dict)
    count: int = 0

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        self.live = set(range(self.initial))
        self.next_id = self.initial

    def batch(self):
        """Writes one ordered bulk of batch_size operations and logs them once MongoDB took them."""
        requests, planned = [], []
        for _ in range(self.batch_size):
            self.count += 1
            w = self.count
            roll = self.rng.random()
            if roll < 0.15:
                doc_id = self.next_id
                self.next_id += 1
                self.live.add(doc_id)
                requests.append(InsertOne({"_id": doc_id, "g": doc_id % 97, "w": w}))
                op = "c"
            else:
                doc_id = self._pick()
                if roll < 0.30:
                    self.live.discard(doc_id)
                    requests.append(DeleteOne({"_id": doc_id}))
                    op = "d"
                else:
                    requests.append(UpdateOne({"_id": doc_id}, {"$set": {"w": w}}))
                    op = "u"
            planned.append((doc_id, (op, w)))
        kinds = [op for _, (op, _) in planned]
        result = self.coll.bulk_write(requests, ordered=True)
        server = (result.inserted_count, result.modified_count, result.deleted_count)
        if server != (kinds.count("c"), kinds.count("u"), kinds.count("d")):
            raise AssertionError(f"seed {self.seed}: MongoDB disagrees with the model: planned (inserted, "
                                 f"modified, deleted) = {(kinds.count('c'), kinds.count('u'), kinds.count('d'))}, "
                                 f"server {server}")
        for doc_id, op in planned:
            self.ops.setdefault(doc_id, []).append(op)
        return result

    def _pick(self):
        while True:
            doc_id = self.rng.randrange(self.next_id)
            if doc_id in self.live:
                return doc_id

    def run_until(self, stop, pause_s):
        while not stop.is_set():
            self.batch()
            stop.wait(pause_s)

    def expected_change_records(self):
        """Change events plus the tombstone after each delete."""
        return sum(len(ops) + sum(op == "d" for op, _ in ops) for ops in self.ops.values())


# ---------------------------------------------------------------------- decoding

class RecordDecoder:
    """Decodes Confluent wire-format Avro keys and values with their writer schemas from the
    registry (what a consumer with the Avro deserializer sees), with fastavro directly."""

    def __init__(self, registry_url):
        self.client = SchemaRegistryClient({"url": registry_url, "timeout": 10})
        self._parsed = {}

    def _decode(self, payload):
        schema_id = schema_id_of(payload)
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            parsed = fastavro.parse_schema(json.loads(self.client.get_schema(schema_id).schema_str))
            self._parsed[schema_id] = parsed
        return fastavro.schemaless_reader(io.BytesIO(payload[5:]), parsed, None)

    def key_id(self, record):
        """The canonical extended JSON of the record key's _id."""
        return canonical_json(self._decode(record.key)["id"])

    def value(self, record):
        """The decoded value, None for a tombstone."""
        return None if record.value is None else self._decode(record.value)


def topic_config(bootstrap, topic, name, timeout_s=30):
    """A topic's effective config value (as the broker reports it, defaults included)."""
    client = admin(bootstrap)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = client.describe_configs([resource])[resource].result(timeout=timeout_s)
    return configs[name].value
