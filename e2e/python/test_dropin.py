"""Drop-in configs (issue 20 item 5): a Debezium and a MongoDB Kafka Connector config from their
documentation start and stream, with only the connection string changed.

The configs are dropin/*.json (their README cites the pages they come from). One `mongorelay
standalone` runs three connectors: Debezium's example as it is; the same example with the
ExtractNewDocumentState transform its event flattening page configures; and the MongoDB Kafka
Connector's tutorial source. pymongo writes before they start and while they stream, and
confluent-kafka reads every topic as a consumer of the peer's records would: Debezium's with the
Avro deserializer (the `after` document an Extended JSON string, as Debezium writes it), the
MongoDB Kafka Connector's as JSON text (its output.format.value=json default), whose
startup.mode=latest default copies nothing written before it started. The REST API shows each
config as it was sent.

The databases and topics are the documentation's, so they are dropped when the test ends, and
each run writes _ids of its own.
"""
import json
import time
import urllib.request
from pathlib import Path

from bson import json_util
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from changes import Registry
from checks import fail_on
from kafka_io import delete_topics, offset_key, read_topics

CONFIGS = Path(__file__).parent / "dropin"

# Debezium matches collection.include.list against the whole <db>.<collection>, as mongorelay
# does, so the example's "inventory[.]*" selects no collection: the one change beyond the
# connection string, for a config that captures something.
DEBEZIUM_INCLUDE = r"inventory[.].*"

# The transform as Debezium's event flattening page configures it:
# https://debezium.io/documentation/reference/stable/transformations/mongodb-event-flattening.html
UNWRAP = {
    "transforms": "unwrap",
    "transforms.unwrap.type": "io.debezium.connector.mongodb.transforms.ExtractNewDocumentState",
    "transforms.unwrap.drop.tombstones": "false",
    "transforms.unwrap.delete.handling.mode": "drop",
    "transforms.unwrap.add.fields": "op",
}


def load(name):
    return json.loads((CONFIGS / name).read_text())


def by_id(records, topic, key_of, ids):
    """The records of topic whose key is one of ids (this run's), per _id, in log order."""
    out = {i: [] for i in ids}
    for r in records:
        if r.topic == topic and r.key is not None:
            doc_id = json.loads(key_of(r))
            if doc_id in out:
                out[doc_id].append(r)
    return out


def test_peer_configs_from_their_documentation_start_and_stream(pipeline, mongo, env, record_property):
    started = time.monotonic()
    run = pipeline.suffix
    debezium = load("debezium-mongodb.json")
    debezium["config"]["mongodb.connection.string"] = env.mongo
    debezium["config"]["collection.include.list"] = DEBEZIUM_INCLUDE
    unwrap = load("debezium-mongodb.json")
    unwrap["name"] += "-unwrap"
    unwrap["config"].update(UNWRAP, **{"mongodb.connection.string": env.mongo, "collection.include.list": DEBEZIUM_INCLUDE,
                                       "topic.prefix": "fulfillment_unwrapped"})  # its own topic: another shape
    mkc = load("mongodb-kafka-source.json")
    mkc["config"]["connection.uri"] = env.mongo
    topics = {"debezium": "fulfillment.inventory.customers", "unwrap": "fulfillment_unwrapped.inventory.customers",
              "mkc": "Tutorial1.orders"}
    customers, orders = mongo["inventory"]["customers"], mongo["Tutorial1"]["orders"]
    try:
        mongo.drop_database("inventory")
        mongo.drop_database("Tutorial1")
        old, gone, new = f"{run}-old", f"{run}-gone", f"{run}-new"
        customers.insert_one({"_id": old, "s": "before the connectors"})
        orders.insert_one({"_id": old, "s": "before the connectors"})
        relay = pipeline.start([debezium, unwrap, mkc], "relay")
        pipeline.wait_committed(relay, [offset_key(debezium["name"], "inventory", "customers"),
                                         offset_key(unwrap["name"], "inventory", "customers"),
                                         offset_key(mkc["name"], "Tutorial1", "orders")])
        # The stored config is the one sent, as Connect shows it; only tasks see the translation.
        with urllib.request.urlopen(f"{pipeline.rest_url}/connectors/{mkc['name']}/config", timeout=10) as response:
            shown = json.load(response)
        assert "connection.uri" in shown and "mongodb.connection.string" not in shown, shown
        for coll in (customers, orders):
            coll.insert_one({"_id": new, "s": "streamed", "n": 1})
            coll.update_one({"_id": new}, {"$set": {"n": 2}})
            coll.insert_one({"_id": gone, "s": "deleted"})
            coll.delete_one({"_id": gone})
        # Debezium 3 + 2 + 2 (a delete and its tombstone), unwrapped 1 + 2 + 2, MKC 2 + 2.
        records = read_topics(pipeline.kafka, list(topics.values()), min_records=16, quiet_s=2.0, timeout_s=90)
        assert relay.alive(), relay.tail()

        registry = Registry.at(pipeline.registry_url)
        avro = AvroDeserializer(registry.client)

        def avro_of(record, field):
            data = record.key if field == MessageField.KEY else record.value
            return avro(data, SerializationContext(record.topic, field))

        def avro_key(record):
            return avro_of(record, MessageField.KEY)["id"]

        problems = []
        ids = [old, new, gone]

        # Debezium's envelope, after as an Extended JSON string, a tombstone after each delete.
        got = by_id(records, topics["debezium"], avro_key, ids)
        want = {old: [("r", "before the connectors")], new: [("c", 1), ("u", 2)], gone: [("c", "deleted"), ("d", None), (None, None)]}
        for doc_id, changes in want.items():
            have = got[doc_id]
            if len(have) != len(changes):
                problems.append(f"debezium {doc_id}: {len(have)} records, want {len(changes)}")
                continue
            for record, (op, expect) in zip(have, changes):
                if op is None:
                    if record.value is not None:
                        problems.append(f"debezium {doc_id}: a value where a tombstone belongs")
                    continue
                value = avro_of(record, MessageField.VALUE)
                if value["op"] != op:
                    problems.append(f"debezium {doc_id}: op {value['op']}, want {op}")
                if op == "d":
                    continue
                if not isinstance(value["after"], str):
                    problems.append(f"debezium {doc_id} {op}: after is {type(value['after']).__name__}, want an Extended JSON string")
                    continue
                after = json_util.loads(value["after"])
                if expect not in (after.get("s"), after.get("n")):
                    problems.append(f"debezium {doc_id} {op}: after {after}, want {expect} in it")

        # ExtractNewDocumentState: the document with __op; drop.tombstones=false keeps a delete's tombstone.
        got = by_id(records, topics["unwrap"], avro_key, ids)
        want = {old: [("r", "before the connectors")], new: [("c", 1), ("u", 2)], gone: [("c", "deleted"), (None, None)]}
        for doc_id, changes in want.items():
            have = got[doc_id]
            if len(have) != len(changes):
                problems.append(f"unwrapped {doc_id}: {len(have)} records, want {len(changes)}")
                continue
            for record, (op, expect) in zip(have, changes):
                if op is None:
                    if record.value is not None:
                        problems.append(f"unwrapped {doc_id}: a value where a tombstone belongs")
                    continue
                doc = avro_of(record, MessageField.VALUE)
                if doc.get("__op") != op or expect not in (doc.get("s"), doc.get("n")):
                    problems.append(f"unwrapped {doc_id}: {doc}, want __op {op} and {expect}")

        # The MongoDB Kafka Connector's defaults: JSON keys and values, nothing copied, no tombstones,
        # updates without the looked-up document.
        got = by_id(records, topics["mkc"], lambda r: json.loads(r.key)["id"], ids)
        want = {old: [], new: [("c", 1), ("u", 2)], gone: [("c", "deleted"), ("d", None)]}
        for doc_id, changes in want.items():
            have = got[doc_id]
            if len(have) != len(changes):
                problems.append(f"mkc {doc_id}: {len(have)} records, want {len(changes)} ({[op for op, _ in changes]})")
                continue
            for record, (op, expect) in zip(have, changes):
                if record.value is None:
                    problems.append(f"mkc {doc_id}: a tombstone where {op} belongs")
                    continue
                value = json.loads(record.value)
                if value["op"] != op:
                    problems.append(f"mkc {doc_id}: op {value['op']}, want {op}")
                if op == "u":
                    # change.stream.full.document=default: what changed, no looked-up document.
                    updated = json_util.loads(((value.get("updateDescription") or {}).get("updatedFields")) or "{}")
                    if value.get("after") is not None or updated.get("n") != expect:
                        problems.append(f"mkc {doc_id} u: after {value.get('after')}, updated fields {updated}; "
                                        f"want no after and n={expect}")
                elif op != "d" and expect not in (value["after"].get("s"), json_util.loads(json.dumps(value["after"])).get("n")):
                    problems.append(f"mkc {doc_id} {op}: after {value['after']}, want {expect} in it")
        record_property("seconds", round(time.monotonic() - started, 1))
        fail_on(problems, "records that differ from the peers' configs' meaning")
    finally:
        for process in reversed(pipeline.processes):
            process.kill()
        mongo.drop_database("inventory")
        mongo.drop_database("Tutorial1")
        delete_topics(pipeline.kafka, list(topics.values()))
