"""Output shapes and formats (issue 20 items 1-2): every output.shape × value.format × key.format.

One `mongorelay standalone` runs a connector per combination, each on its own collection (and
one more with tombstones.on.delete=false, where the document shape writes nothing for a
delete), and pymongo makes the same small set of changes in each, after one document written
before the connector started (a snapshot read): inserts of documents with most BSON types, an
update that `$unset`s a field, an update that sets a field to an explicit null, a replace and a
delete. Each topic is read with confluent-kafka and decoded as a downstream user would:
confluent-kafka's AvroDeserializer against the built-in registry for avro, json.loads for json,
and for json_schema the {"schema", "payload"} envelope of Kafka Connect's JsonConverter, its
schema checked field by field against the payload, and every such record read by JsonConverter
itself (JsonConverterRead.java), as a Connect sink would. Every document must match what pymongo
reads.

Avro records are compared with avrodoc, which tells a field set to null (the null marker record
of typed Avro) from an absent one (null); the JSON formats are compared exactly: the Extended
JSON must give the document's BSON bytes.
"""
import base64
import datetime
import json
import subprocess
import time
from pathlib import Path

import bson
from bson import Decimal128, Int64, ObjectId, json_util
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from changes import Registry, schema_id_of
from checks import fail_on
from kafka_io import offset_key, read_topics
from workload import canonical_id, canonical_json

SHAPES = ("envelope", "document")
VALUE_FORMATS = ("avro", "json", "json_schema")
KEY_FORMATS = ("avro", "json", "string")
COMBINATIONS = [(s, v, k) for s in SHAPES for v in VALUE_FORMATS for k in KEY_FORMATS]
# With tombstones.on.delete=false the document shape writes nothing for a delete.
NO_TOMBSTONES = ("document", "json", "string")
ADDED_FIELDS = "op,source.collection"  # output.document.add.fields of the document shape

JSON_DOCUMENT = {"type": "string", "optional": True, "name": "io.debezium.data.Json", "version": 1}


def collection_of(shape, value_format, key_format, tombstones=True):
    return f"{shape}_{value_format}_{key_format}" + ("" if tombstones else "_no_tombstones")


def documents():
    """The documents inserted, by role; each role's later changes are in write_changes."""
    at = datetime.datetime(2024, 3, 13, 10, 0, 0, 123000)
    return {
        "unset": {"_id": ObjectId("65f1a2b3c4d5e6f708192a3b"), "n": 1, "big": Int64(1 << 40), "x": 2.5,
                  "s": "a", "tags": ["a", "b"], "sub": {"k": "v", "m": [1, 2]}, "at": at, "ok": True,
                  "price": Decimal128("19.90")},
        "null": {"_id": 2, "s": "b", "n": 5},
        "replace": {"_id": "c", "s": "c"},
        "delete": {"_id": Int64(4), "s": "d"},
    }


COPIED = {"_id": "copied", "s": "written before the connector started", "n": Int64(9)}


def write_changes(coll):
    """The changes, each document touched by no operation after the one that gives its final
    state, so that an update's looked-up document is known. Returns the operations per _id,
    COPIED's snapshot read included."""
    docs = documents()
    for doc in docs.values():
        coll.insert_one(dict(doc))
    coll.update_one({"_id": docs["unset"]["_id"]}, {"$set": {"n": 2}, "$unset": {"sub": ""}})
    coll.update_one({"_id": docs["null"]["_id"]}, {"$set": {"s": None}})
    coll.replace_one({"_id": "c"}, {"s": "c2", "list": [Int64(1), Int64(2)]})
    coll.delete_one({"_id": Int64(4)})
    final = {canonical_id(d["_id"]): d for d in coll.find()}
    ops = {canonical_id(COPIED["_id"]): [("r", COPIED)]}
    for role, doc in docs.items():
        key = canonical_id(doc["_id"])
        second = ("d", None) if role == "delete" else ("u", final[key])
        ops[key] = [("c", doc), second]
    return ops


def expected_records(ops, shape, tombstones=True):
    """(op, document) per _id in record order: a delete is followed by its tombstone (op None);
    in the document shape the tombstone is the delete's only record."""
    out = {}
    for key, changes in ops.items():
        records = []
        for op, doc in changes:
            if op == "d":
                records += [] if shape == "document" else [("d", None)]
                records += [(None, None)] if tombstones else []
            else:
                records.append((op, doc))
        out[key] = records
    return out


class Decoder:
    """Decodes one topic's keys and values as a consumer of its formats would."""

    def __init__(self, registry, shape, value_format, key_format):
        self.registry, self.shape, self.value_format, self.key_format = registry, shape, value_format, key_format
        self.avro = AvroDeserializer(registry.client)

    def key(self, record):
        if self.key_format == "avro":
            return canonical_json(self.avro(record.key, SerializationContext(record.topic, MessageField.KEY))["id"])
        if self.key_format == "json":
            return canonical_json(json.loads(record.key)["id"])
        return canonical_json(record.key.decode())

    def problems(self, record, op, expected):
        """How a value differs from the change (op, expected document)."""
        if op is None:
            return [] if record.value is None else ["a tombstone was expected"]
        if record.value is None:
            return [f"a tombstone where {op} was expected"]
        return getattr(self, f"_{self.value_format}")(record, op, expected)

    def _avro(self, record, op, expected):
        value = self.avro(record.value, SerializationContext(record.topic, MessageField.VALUE))
        tree = self.registry.schema(schema_id_of(record.value)).tree
        if self.shape == "envelope":
            return ([] if value["op"] == op else [f"op {value['op']}, want {op}"]) + \
                tree.diff(expected, value["after"], tree.field_type("after"), "after")
        return tree.diff(self._with_added(expected, op, record), value, tree.root, "value")

    def _json(self, record, op, expected):
        value = json.loads(record.value)
        if self.shape == "envelope":
            return ([] if value["op"] == op else [f"op {value['op']}, want {op}"]) + \
                same_document(value["after"], expected)
        return self._added_problems(value, op, record) + same_document(value, expected)

    def _json_schema(self, record, op, expected):
        message = json.loads(record.value)
        if set(message) != {"schema", "payload"}:
            return [f"members {sorted(message)}, want schema and payload"]
        schema, payload = message["schema"], message["payload"]
        problems = conforms(schema, payload, "payload")
        if self.shape == "envelope":
            return problems + envelope_schema_problems(schema, record.topic) + \
                ([] if payload["op"] == op else [f"op {payload['op']}, want {op}"]) + \
                same_document(payload["after"], expected)
        if schema.get("name") != value_name(record.topic) or schema.get("optional") is not False:
            problems.append(f"document schema named {schema.get('name')!r}, optional {schema.get('optional')!r}")
        want = connect_struct(self._with_added(expected, op, record))
        got = {f["field"]: f for f in schema["fields"]}
        for name, (field_schema, value) in want.items():
            if name not in got:
                problems.append(f"{name}: no field in the schema")
                continue
            shown = {k: v for k, v in got[name].items() if k != "field"}
            if shown != field_schema:
                problems.append(f"{name}: schema {shown}, want {field_schema}")
            if payload.get(name, "absent") != value:
                problems.append(f"{name}: payload {payload.get(name, 'absent')!r}, want {value!r}")
        return problems + [f"{name}: in the record, not in MongoDB" for name in got.keys() - want.keys()]

    def _with_added(self, expected, op, record):
        """The document with the fields output.document.add.fields adds."""
        return {**expected, "__op": op, "__source_collection": record.topic.rsplit(".", 1)[1]}

    def _added_problems(self, value, op, record):
        want = self._with_added({}, op, record)
        got = {k: value.pop(k, "absent") for k in want}
        return [] if got == want else [f"added fields {got}, want {want}"]


def same_document(extended_json, expected):
    """Whether canonical Extended JSON (an object, or a string holding it) is the document's BSON."""
    if expected is None or extended_json is None:
        return [] if extended_json is expected else [f"document {extended_json!r}, want {expected!r}"]
    text = extended_json if isinstance(extended_json, str) else json.dumps(extended_json)
    got = json_util.loads(text)
    if bson.encode(got) != bson.encode(expected):
        return [f"document {text}, want {json_util.dumps(expected)}"]
    return []


def value_name(topic):
    return topic + ".Value"


def connect_struct(doc):
    """{field: (Connect schema without "field", payload)} of a document, by docs/record-format.md."""
    return {name: connect_value(value) for name, value in doc.items()}


def connect_value(value):
    optional = {"optional": True}
    if isinstance(value, bool):
        return {"type": "boolean", **optional}, value
    if isinstance(value, Int64):
        return {"type": "int64", **optional}, int(value)
    if isinstance(value, int):
        return {"type": "int32", **optional}, value
    if isinstance(value, float):
        return {"type": "double", **optional}, value
    if isinstance(value, (str, ObjectId, Decimal128)) or value is None:
        return {"type": "string", **optional}, None if value is None else str(value)
    if isinstance(value, datetime.datetime):
        millis = (value - datetime.datetime(1970, 1, 1)) // datetime.timedelta(milliseconds=1)
        return {"type": "int64", **optional, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}, millis
    if isinstance(value, dict):
        fields = connect_struct(value)
        return ({"type": "struct", "fields": [{**s, "field": n} for n, (s, _) in fields.items()], **optional},
                {n: v for n, (_, v) in fields.items()})
    if isinstance(value, list):
        items = [connect_value(v) for v in value]
        if all(s == items[0][0] for s, _ in items):
            return {"type": "array", "items": items[0][0], **optional}, [v for _, v in items]
    raise AssertionError(f"the test's documents have no value like {value!r}")


def conforms(schema, value, path):
    """Every way a JsonConverter payload does not fit its schema (types, required fields)."""
    if value is None:
        return [] if schema.get("optional") else [f"{path}: null in a required field"]
    kind = schema["type"]
    if kind == "struct":
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a struct"]
        names = [f["field"] for f in schema["fields"]]
        problems = [f"{path}.{n}: not in the schema" for n in value if n not in names]
        for f in schema["fields"]:
            problems += conforms(f, value.get(f["field"]), f"{path}.{f['field']}")
        return problems
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not an array"]
        return [p for i, v in enumerate(value) for p in conforms(schema["items"], v, f"{path}[{i}]")]
    ok = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
          "int32": lambda v: type(v) is int and -(1 << 31) <= v < 1 << 31,
          "int64": lambda v: type(v) is int, "double": lambda v: type(v) is float,
          "bytes": lambda v: isinstance(v, str)}[kind]
    return [] if ok(value) else [f"{path}: {value!r} is not a {kind}"]


def envelope_schema_problems(schema, topic):
    """The envelope's schema, checked field by field against the documented one."""
    want_fields = {
        "before": JSON_DOCUMENT, "after": JSON_DOCUMENT,
        "updateDescription": {"type": "struct", "optional": True, "name": "mongorelay.UpdateDescription"},
        "source": {"type": "struct", "optional": False, "name": "mongorelay.Source"},
        "op": {"type": "string", "optional": False},
        "ts_ms": {"type": "int64", "optional": True},
    }
    problems = []
    if (schema["type"], schema["optional"], schema["name"]) != ("struct", False, topic + ".Envelope"):
        problems.append(f"envelope schema {schema['type']} optional={schema['optional']} named {schema['name']}")
    fields = {f["field"]: f for f in schema["fields"]}
    if list(fields) != list(want_fields):
        return problems + [f"envelope fields {list(fields)}, want {list(want_fields)}"]
    for name, want in want_fields.items():
        got = {k: v for k, v in fields[name].items() if k not in ("field", "fields")}
        if got != want:
            problems.append(f"{name}: schema {got}, want {want}")
    source = {f["field"]: (f["type"], f["optional"]) for f in fields["source"]["fields"]}
    want_source = {"connector": ("string", False), "name": ("string", False), "ts_ms": ("int64", False),
                   "snapshot": ("string", False), "db": ("string", False), "collection": ("string", False),
                   "ord": ("int32", False), "resume_token": ("string", True), "txn_id": ("string", True),
                   "lsid": ("string", True), "txnNumber": ("int64", True)}
    if source != want_source:
        problems.append(f"source fields {source}, want {want_source}")
    return problems


def connect_sink_problems(kafka_libs, records):
    """Has Kafka Connect's own JsonConverter (schemas.enable=true) read every json_schema record,
    as a sink would: its schema must parse and its payload fit it, and the value it reads, written
    back without the schema, must be the payload."""
    lines = "".join(f"{r.topic}\t{base64.b64encode(r.value).decode()}\n" for r in records)
    reader = Path(__file__).with_name("JsonConverterRead.java")
    run = subprocess.run(["java", "-cp", f"{kafka_libs}/*", str(reader)], input=lines,
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        return [f"JsonConverterRead failed: {run.stderr[-2000:]}"]
    problems = []
    for record, line in zip(records, run.stdout.splitlines(), strict=True):
        where = f"{record.topic}@{record.offset}"
        if line.startswith("ERROR "):
            problems.append(f"{where}: JsonConverter refuses it: {line[6:]}")
        elif json.loads(line) != json.loads(record.value)["payload"]:
            problems.append(f"{where}: JsonConverter reads {line}, the payload is {json.loads(record.value)['payload']}")
    return problems


def wait_streaming(pipeline, process, connectors, timeout_s=60):
    """Waits until every connector's task has committed a position: its change stream is open."""
    pipeline.wait_committed(process, [offset_key(c["name"], pipeline.db, c["coll"]) for c in connectors], timeout_s)


def test_every_shape_and_format_is_read_by_its_consumer(pipeline, mongo, kafka_libs, record_property):
    started = time.monotonic()
    db = mongo[pipeline.db]
    connectors = []
    runs = [(*combo, True) for combo in COMBINATIONS] + [(*NO_TOMBSTONES, False)]
    for shape, value_format, key_format, tombstones in runs:
        coll = collection_of(shape, value_format, key_format, tombstones)
        db[coll].insert_one(dict(COPIED))
        settings = {"output.shape": shape, "value.format": value_format, "key.format": key_format,
                    "snapshot.mode": "initial", "tombstones.on.delete": str(tombstones).lower()}
        if shape == "document":
            settings["output.document.add.fields"] = ADDED_FIELDS
        connector = pipeline.connector([coll], settings)
        connector["name"] = f"{pipeline.name}-{coll.replace('_', '-')}"
        connectors.append({**connector, "coll": coll})
    relay = pipeline.start([{"name": c["name"], "config": c["config"]} for c in connectors], "relay")
    wait_streaming(pipeline, relay, connectors)
    ops = {c["coll"]: write_changes(db[c["coll"]]) for c in connectors}

    expected_total = sum(len(r) for run in runs
                         for r in expected_records(ops[collection_of(*run)], run[0], run[3]).values())
    records = read_topics(pipeline.kafka, [pipeline.topic(c["coll"]) for c in connectors],
                          min_records=expected_total, quiet_s=2.0, timeout_s=90)
    assert relay.alive(), relay.tail()
    registry = Registry.at(pipeline.registry_url)
    problems = []
    for run in runs:
        coll = collection_of(*run)
        decoder = Decoder(registry, *run[:3])
        got = {}
        for record in records:
            if record.topic == pipeline.topic(coll):
                got.setdefault(decoder.key(record), []).append(record)
        for key, want in expected_records(ops[coll], run[0], run[3]).items():
            have = got.pop(key, [])
            if len(have) != len(want):
                problems.append(f"{coll} {key}: {len(have)} records, want {len(want)} ({[op for op, _ in want]})")
                continue
            for record, (op, doc) in zip(have, want):
                problems += [f"{coll} {key} @{record.offset} ({op}): {p}" for p in decoder.problems(record, op, doc)]
        problems += [f"{coll} {key}: records for a document never written" for key in got]
    with_schema = [r for r in records if r.value is not None and "_json_schema_" in r.topic]
    problems += connect_sink_problems(kafka_libs, with_schema)
    record_property("seconds", round(time.monotonic() - started, 1))
    record_property("connectors", len(runs))
    fail_on(problems, "records that differ from pymongo's documents")
