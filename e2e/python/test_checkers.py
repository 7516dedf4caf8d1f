"""Tests of the suite's own machinery, without mongorelay: a checker that cannot fail proves nothing.

The load's model is checked against MongoDB itself. The record checkers are fed a reference
stream built here to the contract (evolving typed schemas with sanitized names and unions,
Confluent wire format, tombstones, updateDescription, looked-up afters), produced to the real
Kafka and read back through confluent-kafka: it must pass, and each fault put into it (a lost,
reordered or repeated record, a wrong type) must be named.
"""
import copy
import datetime
import json
import re

import pytest
from bson import Decimal128, Int64, ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from avrodoc import Schema
from changes import ChangeDecoder, Registry, event_position, timeline
from checks import apply_description, check_collection, check_document, dedupe, same_values
from kafka_io import admin, delete_topics, offset_key, read_topics
from pipeline import unique_suffix
from workload import COLLECTIONS, MixedLoad, apply_update, canonical_id

# --------------------------------------------------------------- pure helpers (no servers)


def test_offset_key_is_the_contracts_exact_bytes():
    assert offset_key("c1", "db1", "a") == b'["c1",{"db":"db1","coll":"a","shard":"0-of-1"}]'


def test_canonical_id_compares_parsed_json():
    oid = ObjectId("65a000000000000000000001")
    assert canonical_id(oid) == '{"$oid":"65a000000000000000000001"}'
    assert canonical_id("abc") == '"abc"'
    assert canonical_id(5) == '{"$numberInt":"5"}'


def test_apply_update_follows_mongodb_operators():
    doc = {"_id": 1, "a": {"b": 1}, "l": [1], "gone": True}
    after = apply_update(doc, {"$set": {"a.c": 2, "new.x": 3}, "$unset": {"gone": ""}, "$push": {"l": 2, "m": 1}})
    assert after == {"_id": 1, "a": {"b": 1, "c": 2}, "l": [1, 2], "new": {"x": 3}, "m": [1]}
    assert doc["l"] == [1], "the state before must not change"


def test_apply_description_handles_array_paths_removals_and_truncations():
    before = {"_id": 1, "items": [{"q": 1}, {"q": 2}, {"q": 3}], "gone": 1, "tags": ["a"]}
    description = {"updatedFields": json_util.dumps({"items.1.q": 5, "tags.1": "b", "n": Int64(2**40)}),
                   "removedFields": ["gone"], "truncatedArrays": [{"field": "items", "newSize": 2}]}
    assert apply_description(before, description) == {
        "_id": 1, "items": [{"q": 1}, {"q": 5}], "tags": ["a", "b"], "n": 2**40}


def test_event_position_reads_the_resume_token():
    class Ev:
        source = {"resume_token": json.dumps({"_data": "8265A1B2C3000000072B0429"}), "ts_ms": 0, "ord": 0}
    assert event_position(Ev) == (0x65A1B2C3, 7)


def test_comparator_maps_names_and_types_through_the_schema():
    schema = Schema({"type": "record", "name": "Doc", "fields": [
        {"name": "_id", "type": ["null", {"type": "string", "mongodb.type": "objectId"}], "default": None},
        {"name": "first_name", "mongodb.name": "first-name", "type": ["null", "string"], "default": None},
        {"name": "n", "type": ["null", "int", "long", "double"], "default": None},
        {"name": "total", "type": ["null", {"type": "string", "logicalType": "mongodb-decimal128"}], "default": None},
        {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": None},
        {"name": "extra", "type": ["null", "string"], "default": None}]})
    oid = ObjectId()
    doc = {"_id": oid, "first-name": "Ada", "n": 3, "total": Decimal128("1.50"), "at": datetime.datetime(2024, 1, 1)}
    decoded = {"_id": str(oid), "first_name": "Ada", "n": 3, "total": "1.5",
               "at": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc), "extra": None}
    assert schema.diff(doc, decoded, schema.root) == []
    assert schema.diff(doc, {**decoded, "n": 3.0}, schema.root) == [
        ".n: expected int 3, got float 3.0 (Avro double)"]
    assert len(schema.diff({**doc, "more": 1}, decoded, schema.root)) == 1
    assert len(schema.diff(doc, {**decoded, "extra": "x"}, schema.root)) == 1
    plain = Schema({"type": "record", "name": "D", "fields": [{"name": "_id", "type": "string"}]})
    assert "no property of the schema says ObjectId" in plain.diff({"_id": oid}, {"_id": str(oid)}, plain.root)[0]
    wrapped = Schema({"type": "record", "name": "W", "fields": [{"name": "ref", "type": [
        "null", "string", {"type": "record", "name": "mongorelay.bson.ObjectId", "fields": [
            {"name": "value", "type": "string"}]}], "default": None}]})
    assert wrapped.diff({"ref": oid}, {"ref": {"value": str(oid)}}, wrapped.root) == []
    assert wrapped.diff({"ref": "plain"}, {"ref": "plain"}, wrapped.root) == []


# ------------------------------------------------------------------ against the servers


@pytest.fixture
def scratch(env, mongo):
    """A database and topic prefix of the test's own, removed afterwards."""
    suffix = unique_suffix()
    yield mongo[f"e2e_self_{suffix}"], f"e2e-self-{suffix}"
    mongo.drop_database(f"e2e_self_{suffix}")
    delete_topics(env.kafka, [f"e2e-self-{suffix}.{c}" for c in COLLECTIONS])


def test_load_model_matches_mongodb(scratch):
    db, _ = scratch
    load = MixedLoad(db, 3_000, seed=7)
    log = load.run()
    assert log.count == 3_000
    for coll in COLLECTIONS:
        found = {canonical_id(d["_id"]): d for d in db[coll].find()}
        assert found == log.final_states(coll), f"{coll}: the model's final states differ from MongoDB"
    for ops in log.ops.values():
        for prev, op in zip(ops, ops[1:]):
            assert op.before == prev.after, "each operation starts from the state the previous one left"
    kinds = {op.kind for ops in log.ops.values() for op in ops}
    assert kinds == {"insert", "update", "replace", "delete"}


def test_checkers_pass_a_faithful_stream_and_name_each_fault(env, scratch):
    db, prefix = scratch
    log = MixedLoad(db, 1_200, seed=11, batch_size=100).run()
    registry = Registry(SchemaRegistryClient.new_client({"url": "mock://e2e"}))
    for coll in COLLECTIONS:
        topic = f"{prefix}.{coll}"
        count = ReferenceProducer(env.kafka, registry.client, topic, db.name, coll).produce(log)
        records = read_topics(env.kafka, [topic], min_records=count, timeout_s=60)
        changes, problems = ChangeDecoder(registry).decode_all(records)
        assert not problems
        assert len(registry.versions(f"{topic}-value")) >= 3, "the reference schema evolves with the load"
        line = timeline(changes)
        assert check_collection(log, coll, line, db.name) == []

    # Faults, put into the last collection's stream: its longest document history, then a record.
    coll = COLLECTIONS[-1]
    key, events = max(((k, v) for k, v in line.by_key.items() if len(v) >= 4), key=lambda kv: len(kv[1]))
    ops = log.ops[(coll, key)]
    assert check_document(ops, events[:1] + events[2:], db.name, coll, key), "a lost record is named"
    assert check_document(ops, [events[1], events[0], *events[2:]], db.name, coll, key), "a reorder is named"
    assert check_document(ops, events[:1] + events, db.name, coll, key), "a repeat is named"
    unique, repeats = dedupe(events[:1] + events)
    assert (len(unique), len(repeats)) == (len(events), 1)
    assert check_document(ops, unique, db.name, coll, key) == []

    inserted = next(ev for ev in changes if ev.value is not None and ev.op == "c")
    broken = copy.copy(inserted)
    broken.value = copy.deepcopy(inserted.value)
    broken.value["after"]["payload"]["level"] = float(broken.value["after"]["payload"]["level"])
    problem = check_document(log.ops[(coll, inserted.key_id)][:1], [broken], db.name, coll, inserted.key_id)
    assert any("after.payload.level" in p for p in problem), problem


class ReferenceProducer:
    """Writes an operation log to a topic as the contract says mongorelay must (for the checkers' test).

    Schemas are inferred from the documents seen so far and re-registered when they grow, as
    the typed mode does; an update's after is looked up at the end of the load (the latest a
    real lookup can be), exercising the checker's tolerance of updateLookup.
    """

    def __init__(self, bootstrap, registry_client, topic, db, coll):
        client = admin(bootstrap)  # kept alive until the result is in
        client.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
        self.errors = []
        self.client, self.topic, self.db, self.coll = registry_client, topic, db, coll
        key_schema = json.dumps({"type": "record", "name": "Key", "fields": [{"name": "id", "type": "string"}]})
        self.key_serializer = AvroSerializer(registry_client, key_schema)
        self.shape, self.value_serializer = {}, None

    def produce(self, log):
        ops = [op for (c, _), doc_ops in log.ops.items() if c == self.coll for op in doc_ops]
        final = log.final_states(self.coll)
        for n, op in enumerate(ops):
            key = self.key_serializer({"id": json_util.dumps(op.doc_id, json_options=CANONICAL_JSON_OPTIONS)},
                                      SerializationContext(self.topic, MessageField.KEY))
            after = final.get(canonical_id(op.doc_id)) if op.kind == "update" else op.after
            self.evolve(after)
            value = self.value_serializer(self.envelope(op, after, n),
                                          SerializationContext(self.topic, MessageField.VALUE))
            self.producer.produce(self.topic, key=key, value=value, on_delivery=self.delivered)
            if op.kind == "delete":
                self.producer.produce(self.topic, key=key, value=None, on_delivery=self.delivered)
        assert self.producer.flush(30) == 0 and not self.errors, f"reference records not delivered: {self.errors[:3]}"
        return len(ops) + sum(op.kind == "delete" for op in ops)

    def delivered(self, err, _msg):
        if err is not None:
            self.errors.append(err)

    def evolve(self, doc):
        """Merges doc's shape into the schema; a grown schema gets a serializer (and a version)."""
        if doc is None:
            return
        grown = merge(copy.deepcopy(self.shape), shape_of(doc))
        if grown != self.shape or self.value_serializer is None:
            self.shape = grown
            self.value_serializer = AvroSerializer(self.client, json.dumps(envelope_schema(self.shape)))

    def envelope(self, op, after, n):
        description = None
        if op.kind == "update":
            changed = {k: v for k, v in op.after.items() if k not in op.before or not same_values(op.before[k], v)}
            description = {"updatedFields": json_util.dumps(changed, json_options=RELAXED_JSON_OPTIONS),
                           "removedFields": [k for k in op.before if k not in op.after], "truncatedArrays": []}
        return {"op": op.event_op, "before": None, "after": avro_value(after, self.shape),
                "updateDescription": description, "ts_ms": 1_700_000_000_000 + n,
                "source": {"connector": "mongodb", "name": "reference", "db": self.db, "collection": self.coll,
                           "ts_ms": 1_700_000_000_000 + n // 1000 * 1000, "ord": n % 1000,
                           "resume_token": json.dumps({"_data": f"82{1_700_000_000 + n // 1000:08X}{n % 1000:08X}"}),
                           "snapshot": "false"}}


def shape_of(value):
    """A value's shape: kind -> detail (field shapes of a document, item shape of an array)."""
    if isinstance(value, bool):
        return {"boolean": None}
    if isinstance(value, Int64) or isinstance(value, int) and not -2**31 <= value < 2**31:
        return {"long": None}
    if isinstance(value, dict):
        return {"record": {k: shape_of(v) for k, v in value.items()}}
    if isinstance(value, list):
        items = {}
        for item in value:
            items = merge(items, shape_of(item))
        return {"array": items}
    kind = {int: "int", float: "double", str: "string", bytes: "bytes", ObjectId: "objectId",
            Decimal128: "decimal128", datetime.datetime: "date"}[type(value)]
    return {kind: None}


def merge(a, b):
    """The shape that covers both (new document fields appended, new kinds added)."""
    for kind, detail in b.items():
        if kind == "record":
            fields = a.setdefault("record", {})
            for name, sub in detail.items():
                fields[name] = merge(fields.get(name, {}), sub)
        elif kind == "array":
            a["array"] = merge(a.get("array", {}), detail)
        else:
            a.setdefault(kind, None)
    return a


def avro_name(name):
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return "_" + name if name[0].isdigit() else name


# Union branches in a fixed order, long before double: writers pick the first branch a value fits.
KIND_ORDER = ["boolean", "int", "long", "double", "string", "objectId", "decimal128", "date", "bytes",
              "record", "array"]


def avro_type(shape, path):
    """The nullable Avro union for a shape; path names nested records uniquely."""
    branches = ["null"]
    for kind, detail in sorted(shape.items(), key=lambda kv: KIND_ORDER.index(kv[0])):
        if kind == "record":
            branches.append({"type": "record", "name": path, "fields": [
                {"name": avro_name(k), "type": avro_type(sub, f"{path}_{avro_name(k)}"), "default": None,
                 **({"mongodb.name": k} if avro_name(k) != k else {})} for k, sub in detail.items()]})
        elif kind == "array":
            branches.append({"type": "array", "items": avro_type(detail, f"{path}_item")})
        else:
            branches.append({"objectId": {"type": "string", "mongodb.type": "objectId"},
                             "decimal128": {"type": "string", "mongodb.type": "decimal128"},
                             "date": {"type": "long", "logicalType": "timestamp-millis"}}.get(kind, kind))
    return branches


def avro_value(value, shape):
    """A document as the Avro writer takes it (sanitized names, ObjectId and Decimal128 as strings)."""
    if isinstance(value, dict):
        fields = shape["record"]
        return {avro_name(k): avro_value(value.get(k), fields[k]) for k in fields}
    if isinstance(value, list):
        return [avro_value(v, shape["array"]) for v in value]
    if isinstance(value, (ObjectId, Decimal128)):
        return str(value)
    return value


def envelope_schema(shape):
    update_description = {"type": "record", "name": "UpdateDescription", "fields": [
        {"name": "updatedFields", "type": ["null", "string"], "default": None},
        {"name": "removedFields", "type": {"type": "array", "items": "string"}},
        {"name": "truncatedArrays", "type": {"type": "array", "items": {
            "type": "record", "name": "Truncation", "fields": [
                {"name": "field", "type": "string"}, {"name": "newSize", "type": "int"}]}}}]}
    source = {"type": "record", "name": "Source", "fields": [
        {"name": n, "type": t} for n, t in [("connector", "string"), ("name", "string"), ("db", "string"),
                                            ("collection", "string"), ("ts_ms", "long"), ("ord", "int"),
                                            ("resume_token", ["null", "string"]), ("snapshot", "string")]]}
    return {"type": "record", "name": "Envelope", "namespace": "e2e.reference", "fields": [
        {"name": "before", "type": "null", "default": None},
        {"name": "after", "type": avro_type({"record": shape.get("record", {})}, "Document")},
        {"name": "updateDescription", "type": ["null", update_description], "default": None},
        {"name": "op", "type": "string"}, {"name": "ts_ms", "type": "long"}, {"name": "source", "type": source}]}


def test_comparator_tells_explicit_null_from_absent_and_int32_from_int64():
    null_marker = {"type": "record", "name": "mongorelay.bson.Null", "fields": []}
    int64 = {"type": "record", "name": "mongorelay.bson.Int64", "fields": [{"name": "value", "type": "long"}]}
    schema = Schema({"type": "record", "name": "Doc", "fields": [
        {"name": "x", "type": ["null", "string", null_marker], "default": None},
        {"name": "n", "type": ["null", "int", "double", int64], "default": None}]})
    assert schema.diff({"x": None, "n": 3}, {"x": {}, "n": 3}, schema.root) == []
    assert schema.diff({"n": Int64(3)}, {"x": None, "n": {"value": 3}}, schema.root) == []
    assert schema.diff({"x": None}, {"x": None, "n": None}, schema.root) == [".x: set to null, decoded NoneType None"]
    assert schema.diff({}, {"x": {}, "n": None}, schema.root) == [".x: not in MongoDB, decoded a record"]
    assert schema.diff({"n": Int64(3)}, {"x": None, "n": 3}, schema.root) == [".n: int64 read through an Avro int branch"]
