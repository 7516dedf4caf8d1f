"""Routing (issue 20 item 3): topic.namespace.map, one topic for every collection, subject name
strategies and Debezium's heartbeat records.

One `mongorelay standalone` runs three connectors on the test's database:
- `single`: collections s1, s2 and s3, whose documents share _id values, all on one compacted
  topic ({"*": "single"}), Avro keys and values under TopicNameStrategy, and heartbeat.topic;
- `mapped`: m1 and m2 on one topic, m3 on its database's ({"<db>.m1": "pair", "<db>.m2": "pair",
  "<db>": "rest"}), JSON keys, Avro values under TopicRecordNameStrategy;
- `plain`: r1 on its own topic, keys and values under RecordNameStrategy (given by Confluent's
  class names).
pymongo writes the same changes to every collection. Records are read with confluent-kafka and
decoded with its AvroDeserializer; subjects are listed with the registry's GET /subjects.
What compaction keeps of a topic is the last record of each key: it must be one latest record
per (collection, _id), pymongo's final document or the tombstone of its delete, and each
document's records must come in the order pymongo wrote them; then the broker compacts the
shared topic for real and what it keeps is checked the same way.
"""
import json
import time
import urllib.error
import urllib.request

from bson import json_util
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from changes import Registry
from checks import fail_on
from kafka_io import admin, cluster_time, delete_topics, offset_key, read_topics
from workload import canonical_id, canonical_json

IDS = (1, 2, 3)
RECORDS = 8  # per collection: 3 inserts, 3 updates, a delete and its tombstone


def write_changes(coll):
    """Writes the same changes to coll; returns each _id's operations in order."""
    ops = {i: [] for i in IDS}
    for i in IDS:
        doc = {"_id": i, "coll": coll.name, "v": 0}
        coll.insert_one(dict(doc))
        ops[i].append(("c", doc))
    for v in (1, 2):
        coll.update_one({"_id": 1}, {"$set": {"v": v}})
        ops[1].append(("u", {"_id": 1, "coll": coll.name, "v": v}))
    coll.delete_one({"_id": 2})
    ops[2] += [("d", None), (None, None)]  # the delete, then its tombstone
    coll.update_one({"_id": 3}, {"$set": {"v": 7}})
    ops[3].append(("u", {"_id": 3, "coll": coll.name, "v": 7}))
    return ops


def rest(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_streaming(pipeline, process, units, timeout_s=60):
    """Waits until every (connector, collection) has committed a position."""
    keys = [offset_key(name, pipeline.db, coll) for name, coll in units]
    deadline = time.monotonic() + timeout_s
    while True:
        committed = pipeline.committed()
        if all(cluster_time(committed.get(k)) for k in keys):
            return
        assert process.alive(), f"{process.name} exited before streaming:\n{process.tail()}"
        assert time.monotonic() < deadline, f"no position committed for every collection:\n{process.tail()}"
        time.sleep(0.5)


def create_compacted(bootstrap, topic):
    """Creates topic compacted, cleaned as soon as the broker may, as a user keeping the latest
    state of each document would."""
    configs = {"cleanup.policy": "compact", "segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
               "delete.retention.ms": "1000", "min.compaction.lag.ms": "0"}
    client = admin(bootstrap)  # kept until the result: a collected client fails its futures
    client.create_topics([NewTopic(topic, 1, 1, config=configs)])[topic].result(timeout=30)


class Keys:
    """Decodes a record key: Avro (AvroDeserializer) or JSON, into (id, collection field)."""

    def __init__(self, registry, key_format):
        self.avro = AvroDeserializer(registry.client)
        self.key_format = key_format

    def __call__(self, record):
        if self.key_format == "avro":
            key = self.avro(record.key, SerializationContext(record.topic, MessageField.KEY))
        else:
            key = json.loads(record.key)
        return canonical_json(key["id"]), key.get("__dbz__physicalTableIdentifier")


def check_topic(pipeline, registry, records, topic, collections, key_format, ops, routed=True):
    """Problems of one topic's records against the changes of its collections."""
    problems = []
    keys, values = Keys(registry, key_format), AvroDeserializer(registry.client)
    per_doc, last = {}, {}
    for record in (r for r in records if r.topic == topic):
        doc_id, collection = keys(record)
        value = None
        if record.value is not None:
            value = values(record.value, SerializationContext(record.topic, MessageField.VALUE))
            coll = value["source"]["collection"]
        else:
            coll = (collection or "").rsplit(".", 1)[-1] if routed else collections[0]
        if routed and collection != pipeline.topic(coll):
            problems.append(f"{topic} @{record.offset}: key names {collection}, want {pipeline.topic(coll)}")
        if not routed and collection is not None:
            problems.append(f"{topic} @{record.offset}: an unrouted key names a collection ({collection})")
        per_doc.setdefault((coll, doc_id), []).append(value)
        last[record.key] = (coll, doc_id, value)
    ids = {canonical_id(i): i for i in IDS}
    want_docs = {(c, canonical_id(i)) for c in collections for i in IDS}
    if set(per_doc) != want_docs:
        problems.append(f"{topic}: documents {sorted(per_doc)}, want {sorted(want_docs)}")
    for (coll, doc_id), got in per_doc.items():
        want = ops.get(coll, {}).get(ids.get(doc_id), [])
        got_ops = [v["op"] if v else None for v in got]
        if got_ops != [op for op, _ in want]:
            problems.append(f"{topic} {coll} {doc_id}: operations {got_ops}, want {[op for op, _ in want]}")
            continue
        # An update's looked-up document may be a later one's: its own change is in updatedFields.
        for v, (op, doc) in zip(got, want):
            if op == "c" and {k: v["after"][k] for k in ("coll", "v")} != {"coll": doc["coll"], "v": doc["v"]}:
                problems.append(f"{topic} {coll} {doc_id} {op}: after {v['after']}, want {doc}")
            if op == "u" and json_util.loads(v["updateDescription"]["updatedFields"]) != {"v": doc["v"]}:
                problems.append(f"{topic} {coll} {doc_id} {op}: updateDescription {v['updateDescription']}, want v={doc['v']}")
    # What compaction keeps: the last record of each key, one per (collection, _id).
    kept = {(coll, doc_id): value for coll, doc_id, value in last.values()}
    if len(kept) != len(last) or set(kept) != want_docs:
        problems.append(f"{topic}: compaction would keep {len(last)} records for {sorted(kept)}, want one per {sorted(want_docs)}")
    for (coll, doc_id), value in kept.items():
        final = ops.get(coll, {}).get(ids.get(doc_id), [(None, None)])[-1][1]
        if (value is None) != (final is None) or value is not None and value["after"]["v"] != final["v"]:
            problems.append(f"{topic} {coll} {doc_id}: kept {value}, want the final state {final}")
    return problems


def wait_compacted(pipeline, registry, topic, collections, ops, timeout_s=90):
    """Waits until the broker has compacted topic's records before the one of _id 100 (written
    to close their segment) to one per key, and returns how what it kept differs from the final
    state of each (collection, _id): its last document, or its delete's tombstone (or nothing,
    once delete.retention.ms has passed)."""
    keys, values = Keys(registry, "avro"), AvroDeserializer(registry.client)
    deadline = time.monotonic() + timeout_s
    while True:
        kept, repeated, trigger = {}, False, False
        for record in read_topics(pipeline.kafka, [topic], quiet_s=0.5, timeout_s=20):
            doc_id, collection = keys(record)
            if doc_id == canonical_id(100):
                trigger = True
                break
            repeated |= (collection, doc_id) in kept
            kept[(collection, doc_id)] = record.value
        if trigger and not repeated:
            break
        if time.monotonic() >= deadline:
            return [f"{topic} not compacted within {timeout_s} s (the record closing the segment read: {trigger})"]
        time.sleep(2)
    problems = []
    for coll in collections:
        for i in IDS:
            key = (pipeline.topic(coll), canonical_id(i))
            final = ops[coll][i][-1][1]
            if key not in kept:
                if final is not None:
                    problems.append(f"{topic}: compaction dropped {coll} {i}, whose final state is {final}")
                continue
            value = kept.pop(key)
            value = values(value, SerializationContext(topic, MessageField.VALUE)) if value is not None else None
            if (value is None) != (final is None) or value is not None and value["after"]["v"] != final["v"]:
                problems.append(f"{topic}: compaction kept {value} of {coll} {i}, want its final state {final}")
    problems += [f"{topic}: compaction kept a record of {key}, never written" for key in kept]
    return problems


def test_routing_shares_topics_without_merging_documents(pipeline, mongo, record_property):
    started = time.monotonic()
    db = mongo[pipeline.db]
    single, pair, rest_topic = f"{pipeline.prefix}.single", f"{pipeline.prefix}.pair", f"{pipeline.prefix}.rest.m3"
    heartbeats = f"__debezium-heartbeat.{pipeline.prefix}"
    create_compacted(pipeline.kafka, single)
    connectors = {
        "single": (["s1", "s2", "s3"], {"topic.namespace.map": json.dumps({"*": "single"}),
                                        "heartbeat.topic": heartbeats}),
        "mapped": (["m1", "m2", "m3"], {"topic.namespace.map": json.dumps({
            f"{pipeline.db}.m1": "pair", f"{pipeline.db}.m2": "pair", pipeline.db: "rest"}),
            "key.format": "json", "value.subject.name.strategy": "TopicRecordNameStrategy"}),
        "plain": (["r1"], {"key.subject.name.strategy": "io.confluent.kafka.serializers.subject.RecordNameStrategy",
                           "value.subject.name.strategy": "io.confluent.kafka.serializers.subject.RecordNameStrategy"}),
    }
    configs, units = [], []
    for label, (colls, settings) in connectors.items():
        c = pipeline.connector(colls, settings)
        c["name"] = f"{pipeline.name}-{label}"
        configs.append(c)
        units += [(c["name"], coll) for coll in colls]
    for _, coll in units:
        db.create_collection(coll)  # a connector lists the collections that exist when it starts
    try:
        relay = pipeline.start(configs, "relay")
        wait_streaming(pipeline, relay, units)
        ops = {coll: write_changes(db[coll]) for _, coll in units}
        records = read_topics(pipeline.kafka, [single, pair, rest_topic, pipeline.topic("r1")],
                              min_records=RECORDS * len(units), quiet_s=2.0, timeout_s=90)
        assert relay.alive(), relay.tail()
        registry = Registry.at(pipeline.registry_url)
        problems = check_topic(pipeline, registry, records, single, ["s1", "s2", "s3"], "avro", ops)
        problems += check_topic(pipeline, registry, records, pair, ["m1", "m2"], "json", ops)
        problems += check_topic(pipeline, registry, records, rest_topic, ["m3"], "json", ops)
        problems += check_topic(pipeline, registry, records, pipeline.topic("r1"), ["r1"], "avro", ops, routed=False)

        # The subjects Confluent's serializers would register for each strategy.
        def names(coll):
            return f"{pipeline.prefix}.{pipeline.db}.{coll}"
        want_subjects = {f"{single}-key", f"{single}-value",
                         f"{pair}-{names('m1')}.Envelope", f"{pair}-{names('m2')}.Envelope",
                         f"{rest_topic}-{names('m3')}.Envelope",
                         f"{names('r1')}.Key", f"{names('r1')}.Envelope",
                         f"{heartbeats}-key", f"{heartbeats}-value"}
        subjects = set(registry.subjects())
        if subjects != want_subjects:
            problems.append(f"subjects {sorted(subjects)}, want {sorted(want_subjects)}")

        # Heartbeats go on while every collection is idle.
        idle_from = int(time.time() * 1000)
        time.sleep(3.5)
        beats = [r for r in read_topics(pipeline.kafka, [heartbeats], min_records=1, quiet_s=0.5, timeout_s=30)]
        decode = AvroDeserializer(registry.client)
        idle = []
        for r in beats:
            key = decode(r.key, SerializationContext(r.topic, MessageField.KEY))
            value = decode(r.value, SerializationContext(r.topic, MessageField.VALUE))
            if key != {"serverName": pipeline.prefix}:
                problems.append(f"heartbeat key {key}, want serverName {pipeline.prefix}")
            if value["ts_ms"] >= idle_from:
                idle.append(value["ts_ms"])
        if len(idle) < 2:
            problems.append(f"{len(idle)} heartbeats in 3.5 idle seconds at heartbeat.interval.ms=1000 ({len(beats)} in all)")

        # The broker compacts the shared topic: a write after segment.ms closes the segment
        # holding the changes, which the cleaner then compacts to one record per key.
        compacted_s = time.monotonic()
        db["s1"].insert_one({"_id": 100, "coll": "s1", "v": 0})
        problems += wait_compacted(pipeline, registry, single, ["s1", "s2", "s3"], ops)
        record_property("compaction_seconds", round(time.monotonic() - compacted_s, 1))

        # GET /connectors/{name}/topics names the routed topics and the heartbeat topic.
        status, body = rest("GET", f"{pipeline.rest_url}/connectors/{pipeline.name}-single/topics")
        topics = set((body or {}).get(f"{pipeline.name}-single", {}).get("topics", []))
        if status != 200 or topics != {single, heartbeats}:
            problems.append(f"GET topics of single: {status} {body}, want {sorted([single, heartbeats])}")

        # A bad map is refused, naming the key and the entry, and changes nothing.
        name = f"{pipeline.name}-mapped"
        _, before = rest("GET", f"{pipeline.rest_url}/connectors/{name}/config")
        bad = dict(before, **{"topic.namespace.map": json.dumps({f"{pipeline.db}.": "x"})})
        status, body = rest("PUT", f"{pipeline.rest_url}/connectors/{name}/config", bad)
        message = (body or {}).get("message", "")
        if status != 400 or "topic.namespace.map" not in message or f'"{pipeline.db}."' not in message:
            problems.append(f"a bad topic.namespace.map: {status} {body}, want 400 naming the key and entry")
        _, after = rest("GET", f"{pipeline.rest_url}/connectors/{name}/config")
        if after != before:
            problems.append(f"a refused config changed the stored one: {after}, was {before}")

        record_property("seconds", round(time.monotonic() - started, 1))
        record_property("records", len(records))
        fail_on(problems, "routing problems")
    finally:
        delete_topics(pipeline.kafka, [heartbeats])
