"""Drop-in configs (issue 20 item 5): a Debezium and a MongoDB Kafka Connector config from their
documentation start and stream with only the connection string's host changed, and `mongorelay
config translate` shows what their keys became.

The configs are dropin/*.json (their README cites the pages they come from). One `mongorelay
standalone` runs four connectors:

- Debezium's tutorial config, with its mongodb.user and mongodb.password, against a private
  MongoDB stand-in started with that user, so the connector must authenticate (SCRAM);
- the same config with the ExtractNewDocumentState transform Debezium's event flattening page
  configures, under another name and topic.prefix (its own topic: another shape);
- Debezium's reference example, against the shared stand-in, under another name (the tutorial's
  is the same): its collection.include.list, inventory[.]*, matches no <db>.<collection> whole,
  so Debezium captures nothing with it, and neither does mongorelay: it runs and writes nothing;
- the MongoDB Kafka Connector's tutorial source, against the shared stand-in.

pymongo writes before they start and while they stream (on the private stand-in as the
tutorial's user), and confluent-kafka reads every topic as a consumer of the peer's records
would: Debezium's with the Avro deserializer (the `after` document an Extended JSON string, as
Debezium writes it), the MongoDB Kafka Connector's as JSON text (its output.format.value=json
default), whose startup.mode=latest default copies nothing written before it started. The REST
API shows each config as it was sent, secrets hidden.

The databases and topics of the shared servers are the documentation's, so they are dropped when
the test ends, and each run writes _ids of its own.
"""
import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bson import json_util
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pymongo import MongoClient

from changes import Registry
from checks import fail_on
from kafka_io import delete_topics, existing_topics, offset_key, read_topics

CONFIGS = Path(__file__).parent / "dropin"

# The tutorial's mongodb.user and mongodb.password, the private stand-in's one user.
TUTORIAL_USER, TUTORIAL_PASSWORD = "debezium", "dbz"

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


def host_of(uri):
    """The host:port of a mongodb:// connection string."""
    return urllib.parse.urlsplit(uri).netloc.rsplit("@", 1)[-1]


def rehost(uri, host):
    """uri with host (host:port) in place of its own: the one change a documented config gets."""
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(uri)._replace(netloc=host))


def translate(binary, connector, workdir):
    """What `mongorelay config translate` prints for connector."""
    path = Path(workdir) / f"{connector['name']}.translate.json"
    path.write_text(json.dumps(connector))
    out = subprocess.run([binary, "config", "translate", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"config translate {path}: exit {out.returncode}\n{out.stderr}"
    return out.stdout


def rest_get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def by_id(records, topic, key_of, ids):
    """The records of topic whose key is one of ids (this run's), per _id, in log order."""
    out = {i: [] for i in ids}
    for r in records:
        if r.topic == topic and r.key is not None:
            doc_id = json.loads(key_of(r))
            if doc_id in out:
                out[doc_id].append(r)
    return out


def test_peer_configs_from_their_documentation_start_and_stream(pipeline, mongo, env, private_mongo, record_property):
    started = time.monotonic()
    run = pipeline.suffix
    secured = host_of(private_mongo(users=[f"{TUTORIAL_USER}:{TUTORIAL_PASSWORD}"]))
    shared = host_of(env.mongo)

    tutorial = load("debezium-tutorial-mongodb.json")
    tutorial["config"]["mongodb.connection.string"] = rehost(tutorial["config"]["mongodb.connection.string"], secured)
    unwrap = json.loads(json.dumps(tutorial))
    unwrap["name"] += "-unwrap"
    unwrap["config"].update(UNWRAP, **{"topic.prefix": "dbserver1_unwrapped"})
    example = load("debezium-mongodb.json")
    example["name"] += "-example"
    example["config"]["mongodb.connection.string"] = rehost(example["config"]["mongodb.connection.string"], shared)
    mkc = load("mongodb-kafka-source.json")
    mkc["config"]["connection.uri"] = rehost(mkc["config"]["connection.uri"], shared)
    topics = {"debezium": "dbserver1.inventory.customers", "unwrap": "dbserver1_unwrapped.inventory.customers",
              "mkc": "Tutorial1.orders"}
    example_topic = "fullfillment.inventory.customers"

    # config translate: what each documented config's keys became.
    problems = []
    expected = {
        tutorial["name"]: [
            f'mongodb.user="debezium" -> mongodb.connection.string="mongodb://debezium:[hidden]@{secured}/?replicaSet=rs0"',
            'mongodb.password="[hidden]" -> mongodb.connection.string=',
            'connector.class="io.debezium.connector.mongodb.MongoDbConnector" -> document.mode="json"',
            '"database.include.list": "inventory"',
            "warnings (these keys do nothing in mongorelay):\n  none"],
        unwrap["name"]: ['-> output.shape="document"', 'transforms.unwrap.add.fields="op" -> output.document.add.fields="op"'],
        example["name"]: ['"collection.include.list": "inventory[.]*"'],  # unchanged: matched as Debezium matches it
        mkc["name"]: [
            f'connection.uri="mongodb://{shared}" -> mongodb.connection.string="mongodb://{shared}"',
            'collection="orders" -> collection.include.list="(?-i:Tutorial1\\\\.orders)"',
            '-> snapshot.mode="never"', '-> value.format="json"'],
    }
    for connector in (tutorial, unwrap, example, mkc):
        shown = translate(pipeline.binary, connector, pipeline.workdir)
        problems += [f"config translate {connector['name']} lacks {want!r}:\n{shown}"
                     for want in expected[connector["name"]] if want not in shown]
        if f":{TUTORIAL_PASSWORD}@" in shown:
            problems.append(f"config translate {connector['name']} shows the password:\n{shown}")
    fail_on(problems, "translations that differ from what the configs mean")

    customers, orders = mongo["inventory"]["customers"], mongo["Tutorial1"]["orders"]
    with MongoClient(f"mongodb://{TUTORIAL_USER}:{TUTORIAL_PASSWORD}@{secured}/?directConnection=true",
                     serverSelectionTimeoutMS=10000) as secured_client:
        secured_customers = secured_client["inventory"]["customers"]
        try:
            mongo.drop_database("inventory")
            mongo.drop_database("Tutorial1")
            old, gone, new = f"{run}-old", f"{run}-gone", f"{run}-new"
            for coll in (secured_customers, customers, orders):
                coll.insert_one({"_id": old, "s": "before the connectors"})
            relay = pipeline.start([tutorial, unwrap, example, mkc], "relay")
            pipeline.wait_committed(relay, [offset_key(tutorial["name"], "inventory", "customers"),
                                             offset_key(unwrap["name"], "inventory", "customers"),
                                             offset_key(mkc["name"], "Tutorial1", "orders")])
            # The stored config is the one sent, as Connect shows it, secrets hidden; only tasks see the translation.
            shown = rest_get(f"{pipeline.rest_url}/connectors/{mkc['name']}/config")
            assert "connection.uri" in shown and "mongodb.connection.string" not in shown, shown
            shown = rest_get(f"{pipeline.rest_url}/connectors/{tutorial['name']}/config")
            assert shown["mongodb.user"] == TUTORIAL_USER and shown["mongodb.password"] == "[hidden]", shown
            for coll in (secured_customers, customers, orders):
                coll.insert_one({"_id": new, "s": "streamed", "n": 1})
                coll.update_one({"_id": new}, {"$set": {"n": 2}})
                coll.insert_one({"_id": gone, "s": "deleted"})
                coll.delete_one({"_id": gone})
            # Debezium 3 + 2 + 2 (a delete and its tombstone), unwrapped 1 + 2 + 2, MKC 2 + 2.
            records = read_topics(pipeline.kafka, list(topics.values()), min_records=16, quiet_s=2.0, timeout_s=90)
            assert relay.alive(), relay.tail()

            # Debezium's reference example runs, and captures nothing, as in Debezium.
            status = rest_get(f"{pipeline.rest_url}/connectors/{example['name']}/status")
            if status["connector"]["state"] != "RUNNING":
                problems.append(f"the reference example is not RUNNING: {status}")
            if example_topic in existing_topics(pipeline.kafka):
                problems.append(f"the reference example, whose inventory[.]* matches no namespace, wrote to {example_topic}")
            if offset_key(example["name"], "inventory", "customers") in pipeline.committed():
                problems.append("the reference example, whose inventory[.]* matches no namespace, streams inventory.customers")

            registry = Registry.at(pipeline.registry_url)
            avro = AvroDeserializer(registry.client)

            def avro_of(record, field):
                data = record.key if field == MessageField.KEY else record.value
                return avro(data, SerializationContext(record.topic, field))

            def avro_key(record):
                return avro_of(record, MessageField.KEY)["id"]

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
            delete_topics(pipeline.kafka, [*topics.values(), example_topic])
