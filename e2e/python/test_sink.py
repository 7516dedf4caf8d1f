"""The Kafka → MongoDB sink (issue 21, DESIGN.md 17) against real Kafka and the MongoDB stand-in.

Two shapes of input, each written by confluent-kafka as a user's producer would and read back
with pymongo:

* the seed's: JSON messages, several versions per _id, on topics t1…t8 of a prefix, half
  created before the connector starts and half after (topics.regex picks them up); each
  collection of a topic's name ends with the last version of every _id;
* Debezium's MongoDB connector envelope, as its documentation shows it through Kafka Connect's
  JsonConverter: creates, full-document and description-only updates, an update whose after is
  null, deletes and tombstones, applied exactly; and records that can never be written go to
  the dead letter topic with Kafka Connect's error headers.
"""
import json
import random
import time

from bson import Int64, ObjectId, json_util
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from kafka_io import admin

TOPICS = [f"t{i}" for i in range(1, 9)]


def create_topics(kafka, names, partitions):
    client = admin(kafka)  # kept alive until the results are in
    for future in client.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        future.result(timeout=30)


def sink_connector(pipeline, settings):
    config = {"connector.class": "mongodb-sink", "mongodb.connection.string": pipeline.mongo_uri,
              "database": pipeline.db, "max.batch.size": "200"}
    config.update(settings)
    return {"name": pipeline.name + "-sink", "config": config}


def wait_for(what, check, process, timeout_s=90):
    """Waits until check() returns a true value and returns it; fails with the last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value is True:
            return
        if not process.alive():
            raise AssertionError(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {timeout_s} s: {value}\n{process.tail()}")
        time.sleep(0.5)


def produce(kafka, records):
    producer = Producer({"bootstrap.servers": kafka, "enable.idempotence": True})
    for topic, key, value in records:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0, "records left unsent"


def test_seed_shape_last_version_of_every_id_per_topic(pipeline, mongo, env):
    """The seed's daemon: JSON per topic into the collection of its name, the last version wins."""
    rng = random.Random(21)
    topics = [f"{pipeline.prefix}.{t}" for t in TOPICS]
    early, late = topics[:4], topics[4:]
    create_topics(env.kafka, early, partitions=2)
    # 12 partitions shared by 3 tasks; the late topics' partitions join them as they appear.
    process = pipeline.start(sink_connector(pipeline, {
        "topics.regex": rf"{pipeline.prefix}\.t[1-8]", "tasks.max": "3"}), "sink")

    expected = {t: {} for t in topics}

    def write(round_topics, versions):
        records = []
        for topic in round_topics:
            for version in range(versions):
                for i in range(50):
                    doc = {"_id": f"id{i}", "version": version, "payload": {"n": rng.randint(0, 1 << 40),
                           "tags": [rng.choice("abc") for _ in range(rng.randint(0, 3))]}}
                    if rng.random() < 0.1:
                        doc["optional"] = None
                    expected[topic][doc["_id"]] = doc
                    records.append((topic, doc["_id"].encode(), json.dumps(doc).encode()))
        produce(env.kafka, records)

    def converged(topics):
        for topic in topics:
            got = {d["_id"]: d for d in mongo[pipeline.db][topic].find()}
            if got != expected[topic]:
                wrong = [i for i in expected[topic] if got.get(i) != expected[topic][i]]
                return f"{topic}: {len(got)} documents, {len(wrong)} not at their last version (e.g. {wrong[:3]})"
        return True

    write(early, versions=3)
    # The connector has listed its topics and runs: the late ones are new to it.
    wait_for("the early topics' last versions in MongoDB", lambda: converged(early), process)
    create_topics(env.kafka, late, partitions=1)
    write(late, versions=2)
    write(early + late, versions=1)
    wait_for("every topic's last versions in MongoDB", lambda: converged(topics), process)


def debezium(op, after=None, update=None, ts=0):
    """A Debezium MongoDB change event as JsonConverter (schemas enabled) writes it."""
    payload = {"after": after, "updateDescription": update, "source": {
        "version": "2.7.0.Final", "connector": "mongodb", "name": "fulfillment", "ts_ms": ts, "snapshot": "false",
        "db": "inventory", "rs": "rs0", "collection": "customers", "ord": 1}, "op": op, "ts_ms": ts}
    schema = {"type": "struct", "optional": False, "name": "fulfillment.inventory.customers.Envelope", "fields": [
        {"type": "string", "optional": True, "name": "io.debezium.data.Json", "version": 1, "field": "after"},
        {"type": "struct", "optional": True, "field": "updateDescription", "fields": [
            {"type": "array", "items": {"type": "string", "optional": False}, "optional": True, "field": "removedFields"},
            {"type": "string", "optional": True, "name": "io.debezium.data.Json", "version": 1, "field": "updatedFields"},
            {"type": "array", "optional": True, "field": "truncatedArrays", "items": {"type": "struct", "fields": [
                {"type": "string", "optional": False, "field": "field"},
                {"type": "int32", "optional": False, "field": "size"}]}}]},
        {"type": "struct", "optional": False, "field": "source", "fields": []},
        {"type": "string", "optional": True, "field": "op"},
        {"type": "int64", "optional": True, "field": "ts_ms"}]}
    return json.dumps({"schema": schema, "payload": payload}).encode()


def debezium_key(doc_id):
    text = json_util.dumps(doc_id, json_options=json_util.CANONICAL_JSON_OPTIONS)
    return json.dumps({"schema": {"type": "struct", "fields": [{"type": "string", "optional": False, "field": "id"}],
                                  "optional": False, "name": "fulfillment.inventory.customers.Key"},
                       "payload": {"id": text}}).encode()


def ext(doc):
    return json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS)


def test_debezium_envelope_applied_exactly_and_bad_records_dead_lettered(pipeline, mongo, env):
    topic, dlq = f"{pipeline.prefix}.dbz", f"{pipeline.prefix}.dlq"
    create_topics(env.kafka, [topic], partitions=1)
    oid = ObjectId()
    anne = {"_id": Int64(1004), "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"}
    sally = {"_id": oid, "first_name": "Sally", "tags": ["a", "b", "c"], "address": {"city": "Oslo", "zip": "0150"}}
    gone = {"_id": "gone", "first_name": "Temp"}
    records = [
        (debezium_key(anne["_id"]), debezium("r", after=ext(anne))),
        (debezium_key(oid), debezium("c", after=ext(sally))),
        (debezium_key("gone"), debezium("c", after=ext(gone))),
        # capture.mode=change_streams_update_full: after is the whole document
        (debezium_key(anne["_id"]), debezium("u", after=ext({**anne, "first_name": "Anne Marie"}),
                                             update={"updatedFields": ext({"first_name": "Anne Marie"}),
                                                     "removedFields": None, "truncatedArrays": None})),
        # capture.mode=change_streams: only the description
        (debezium_key(oid), debezium("u", update={"updatedFields": ext({"address.city": "Bergen", "n": Int64(7)}),
                                                  "removedFields": ["first_name"],
                                                  "truncatedArrays": [{"field": "tags", "size": 1}]})),
        # an update whose document was deleted before it was looked up: nothing to write
        (debezium_key("gone"), debezium("u", after=None, update=None)),
        (debezium_key("gone"), debezium("d")),
        (debezium_key("gone"), None),
        # records no _id can be derived from, and one that is not JSON at all
        (None, json.dumps({"no": "id"}).encode()),
        (None, b"\xff\xfenot json"),
    ]
    produce(env.kafka, [(topic, k, v) for k, v in records])
    # insert-one, ordered: the server refuses a duplicate _id; the writes after it still happen.
    inserts, insert_dlq = f"{pipeline.prefix}.inserts", f"{pipeline.prefix}.inserts-dlq"
    create_topics(env.kafka, [inserts], partitions=1)
    produce(env.kafka, [(inserts, None, json.dumps(d).encode()) for d in
                        ({"_id": 1, "v": "first"}, {"_id": 1, "v": "again"}, {"_id": 2, "v": "after"})])
    insert_sink = sink_connector(pipeline, {
        "topics": inserts, "collection": "inserts", "writemodel.strategy": "insert-one",
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": insert_dlq})
    insert_sink["name"] += "-inserts"
    process = pipeline.start([sink_connector(pipeline, {
        "topics": topic, "collection": "customers", "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": dlq}), insert_sink], "sink")

    want = {
        Int64(1004): {**anne, "first_name": "Anne Marie"},
        oid: {"_id": oid, "tags": ["a"], "address": {"city": "Bergen", "zip": "0150"}, "n": Int64(7)},
    }

    def applied():
        got = {d["_id"]: d for d in mongo[pipeline.db]["customers"].find()}
        return True if got == want else f"collection holds {got}"
    wait_for("the Debezium changes applied", applied, process)
    assert isinstance(mongo[pipeline.db]["customers"].find_one({"_id": 1004})["_id"], Int64)

    dead = dead_letters(env.kafka, dlq, 2)
    assert [m.value() for m in dead] == [records[8][1], records[9][1]]
    for msg, offset in zip(dead, (8, 9)):
        headers = {k: v.decode() for k, v in msg.headers()}
        assert headers["__connect.errors.topic"] == topic
        assert headers["__connect.errors.partition"] == "0"
        assert headers["__connect.errors.offset"] == str(offset)
        assert headers["__connect.errors.exception.message"]
    assert "no _id can be derived" in dict(dead[0].headers())["__connect.errors.exception.message"].decode()

    wait_for("the inserts written around the refused one",
             lambda: True if list(mongo[pipeline.db]["inserts"].find(sort=[("_id", 1)])) == [
                 {"_id": 1, "v": "first"}, {"_id": 2, "v": "after"}] else "not yet", process)
    [refused] = dead_letters(env.kafka, insert_dlq, 1)
    headers = {k: v.decode() for k, v in refused.headers()}
    assert json.loads(refused.value()) == {"_id": 1, "v": "again"}
    assert headers["__connect.errors.offset"] == "1"
    assert "MongoDB refused the write (code 11000)" in headers["__connect.errors.exception.message"], headers


def dead_letters(kafka, topic, count, timeout_s=30):
    """The first count records of a dead letter topic, read as a Connect user would."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": topic + "-reader",
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe([topic])
    dead, deadline = [], time.monotonic() + timeout_s
    while len(dead) < count and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            dead.append(msg)
    consumer.close()
    return dead
