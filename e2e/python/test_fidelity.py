"""Schema fidelity of typed Avro (issue 20 item 4): every record of a long mixed-type evolution
decodes with its subject's latest schema in fastavro, confluent-kafka and Java's Avro alike, each
value equal to pymongo's, its type included.

The mixed load of the other suites (workload.MixedLoad: a counter going int32 -> int64 -> double,
ObjectId, string and integer _ids, dates, Decimal128, binary, fields appearing by phase and
`$unset`) runs beside a collection built for the known gaps, where each field changes kind from
phase to phase, so the records of the first phases were written with schemas that knew none of
the kinds that joined later: `v` goes bytes -> string (they promote to each other), `w` ObjectId
-> string -> date -> int64 (kinds sharing an Avro type), `n` int32 -> double -> int64, and `x` is
absent, explicitly null or a value.

fastavro's reading with the latest schema is checked against pymongo's documents (checks.py and
avrodoc: an int32 must come back an int through an `int` branch, an ObjectId with its hint, an
explicit null as the null marker, an absent field as null); confluent-kafka's AvroDeserializer
given the latest schema as its reader schema, and org.apache.avro's GenericDatumReader
(AvroLatestRead.java, resolving writer to latest schema), must then decode every record to the
very same values and types.
"""
import base64
import datetime
import json
import math
import subprocess
import time
from pathlib import Path

from bson import Decimal128, Int64, ObjectId
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from changes import Registry, timeline
from checks import check_collection, fail_on
from test_standalone import documents_of, final_state_problems, load_seed, read_changes
from workload import COLLECTIONS, EPOCH, MixedLoad


class Kinds:
    """A collection whose fields change kind with the phase (see the module doc)."""
    name = "kinds"

    def new_id(self, rng):
        return rng.randrange(100_000)

    def v(self, rng, phase):
        if phase == 0 or (phase == 2 and rng.random() < 0.5):
            return rng.randbytes(rng.randrange(1, 12))
        return f"text {rng.randrange(1000)}"

    def w(self, rng, phase):
        options = [lambda: ObjectId(rng.randbytes(12)), lambda: f"w{rng.randrange(99)}",
                   lambda: EPOCH + datetime.timedelta(milliseconds=rng.randrange(10**10)),
                   lambda: Int64(2**40 + rng.randrange(1000))]
        return rng.choice(options[:phase + 1])()

    def n(self, rng, phase):
        choices = [rng.randrange(1000), rng.randrange(1000) + 0.25, Int64(2**35 + rng.randrange(9))]
        return rng.choice(choices[:min(phase, 2) + 1])

    def x(self, rng, phase, doc):
        """Sets x in doc to a value or an explicit null, or leaves it absent."""
        pick = rng.randrange(3)
        if pick == 1:
            doc["x"] = None
        elif pick == 2:
            doc["x"] = rng.choice([rng.randrange(9), "x", Decimal128("1.5")][:phase + 1])

    def document(self, rng, phase, doc_id):
        doc = {"_id": doc_id, "v": self.v(rng, phase), "w": self.w(rng, phase), "n": self.n(rng, phase),
               "list": [self.w(rng, phase), None, self.n(rng, phase)]}
        self.x(rng, phase, doc)
        return doc

    def updates(self, rng, phase, doc):
        return [{"$set": {"v": self.v(rng, phase), "w": self.w(rng, phase)}},
                {"$set": {"n": self.n(rng, phase)}},
                {"$set": {"x": None}},
                {"$unset": {"x": ""}},
                {"$push": {"list": self.n(rng, phase)}}]


def strict_differences(want, got, path="value"):
    """Where got differs from want in value or Python type (NaN equal to NaN)."""
    if isinstance(want, float) and isinstance(got, float) and math.isnan(want) and math.isnan(got):
        return []
    if type(want) is not type(got):
        return [f"{path}: {type(want).__name__} {want!r:.80}, got {type(got).__name__} {got!r:.80}"]
    if isinstance(want, dict):
        if set(want) != set(got):
            return [f"{path}: fields {sorted(want)}, got {sorted(got)}"]
        return [p for k in want for p in strict_differences(want[k], got[k], f"{path}.{k}")]
    if isinstance(want, list):
        if len(want) != len(got):
            return [f"{path}: {len(want)} elements, got {len(got)}"]
        return [p for i, (w, g) in enumerate(zip(want, got)) for p in strict_differences(w, g, f"{path}[{i}]")]
    return [] if want == got else [f"{path}: {want!r:.80}, got {got!r:.80}"]


def from_java(value):
    """AvroLatestRead's tagged JSON as the Python values fastavro gives."""
    if isinstance(value, list):
        return [from_java(v) for v in value]
    if not isinstance(value, dict):
        return value
    (tag, inner), = value.items()
    if tag in ("int", "long"):
        return inner
    if tag == "double":
        return float(inner)
    if tag == "bytes":
        return base64.b64decode(inner)
    if tag == "ts":
        return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=inner)
    return {k: from_java(v) for k, v in inner.items()}  # record or map


def java_decodings(kafka_libs, registry, changes):
    """Every change's value decoded by org.apache.avro from its writer schema to its latest."""
    lines, defined = [], set()
    for ch in changes:
        for schema_id in (ch.writer.schema_id, ch.reader.schema_id):
            if schema_id not in defined:
                text = registry.client.get_schema(schema_id).schema_str
                lines.append(f"S\t{schema_id}\t{base64.b64encode(text.encode()).decode()}\n")
                defined.add(schema_id)
        body = base64.b64encode(ch.record.value[5:]).decode()
        lines.append(f"R\t{ch.writer.schema_id}\t{ch.reader.schema_id}\t{body}\n")
    reader = Path(__file__).with_name("AvroLatestRead.java")
    run = subprocess.run(["java", "-cp", f"{kafka_libs}/*", str(reader)], input="".join(lines),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"AvroLatestRead failed: {run.stderr[-2000:]}"
    return run.stdout.splitlines()


def cross_reader_problems(kafka_libs, registry, changes):
    """How confluent-kafka's and Java's decodings with the latest schema differ from fastavro's."""
    changes = [ch for ch in changes if ch.value is not None]
    problems = []
    deserializers = {}
    for ch in changes:
        subject = f"{ch.record.topic}-value"
        if subject not in deserializers:
            latest = registry.client.get_schema(ch.reader.schema_id).schema_str
            deserializers[subject] = AvroDeserializer(registry.client, schema_str=latest)
        got = deserializers[subject](ch.record.value, SerializationContext(ch.record.topic, MessageField.VALUE))
        problems += [f"{ch.where()} confluent-kafka: {p}" for p in strict_differences(ch.latest, got)]
    for ch, line in zip(changes, java_decodings(kafka_libs, registry, changes), strict=True):
        if line.startswith("ERROR "):
            problems.append(f"{ch.where()} org.apache.avro: {line[6:]}")
            continue
        problems += [f"{ch.where()} org.apache.avro: {p}" for p in strict_differences(ch.latest, from_java(json.loads(line)))]
    return problems


def test_every_record_of_a_mixed_evolution_decodes_alike_with_the_latest_schema(pipeline, mongo, kafka_libs,
                                                                                record_property):
    db = mongo[pipeline.db]
    collections = (*COLLECTIONS, Kinds.name)
    for coll in collections:
        db.create_collection(coll)
    relay = pipeline.start(pipeline.connector(list(collections)), "relay")
    pipeline.wait_streaming(relay, list(collections))

    seed = load_seed(record_property)
    started = time.monotonic()
    mixed = MixedLoad(db, 6_000, seed).run()
    kinds = MixedLoad(db, 1_500, seed, batch_size=100, shapes=(Kinds(),)).run()
    record_property("load_seconds", round(time.monotonic() - started, 1))
    logs = {coll: mixed for coll in COLLECTIONS} | {Kinds.name: kinds}

    expected = sum(log.expected_records(coll) for coll, log in logs.items())
    changes, problems = read_changes(pipeline, list(collections), min_records=expected, running=relay)
    for coll, log in logs.items():
        line = timeline(changes[coll])
        problems += check_collection(log, coll, line, pipeline.db)
        problems += final_state_problems(coll, line.by_key, documents_of(db[coll]))
    fail_on(problems, f"records against pymongo's documents (seed {seed})")

    registry = Registry.at(pipeline.registry_url)
    every = [ch for coll in collections for ch in changes[coll]]
    fail_on(cross_reader_problems(kafka_libs, registry, every),
            f"confluent-kafka and Java decodings against fastavro's, {len(every)} records (seed {seed})")
    for coll in collections:
        versions = registry.versions(f"{pipeline.topic(coll)}-value")
        record_property(f"{coll}_schema_versions", len(versions))
        assert len(versions) > 2, f"{coll}: {len(versions)} schema versions, the evolution did not happen"
    assert relay.stop() == 0
