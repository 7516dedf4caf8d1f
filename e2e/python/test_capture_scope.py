"""Acceptance of capture.scope=database (issue 19): one change stream per database shard,
filtered on the server to the captured collections and fanned out to their topics.

On a private MongoDB stand-in (its cursors are the connector's alone), a connector captures 50
collections of one database with 4 shards: the server must hold exactly 4 change stream cursors
for it (counted with $currentOp by the connector's appName, and by serverStatus), and a mixed
load of 10,000 operations over the 50 collections must arrive exactly, per document in order,
each collection on its own topic; a collection of the database that the connector does not
capture gets no topic.
"""
import time

from pymongo import MongoClient

from checks import check_collection, fail_on
from changes import timeline
from kafka_io import existing_topics, offset_key
from test_standalone import documents_of, final_state_problems, load_seed, read_changes
from workload import Events, MixedLoad, Orders, People

SHARDS = 4


def fifty_collections():
    """50 collections, each with the document shape of one of the load's three collections."""
    shapes = []
    for i in range(50):
        shape = (Orders, People, Events)[i % 3]()
        shape.name = f"c{i:02d}"
        shapes.append(shape)
    return shapes


def change_stream_cursors(client, app_name):
    """The open change stream cursors of the clients named app_name ($currentOp: the stand-in
    lists change stream cursors only)."""
    return list(client.admin.aggregate([{"$currentOp": {"idleCursors": True}},
                                        {"$match": {"type": "idleCursor", "appName": app_name}}]))


def open_cursors(client):
    return client.admin.command("serverStatus")["metrics"]["cursor"]["open"]["total"]


def test_database_scope_four_shards_fifty_collections(pipeline, private_mongo, record_property):
    uri = private_mongo(oplog_max_entries=200_000)
    app_name = f"scope-{pipeline.name}"
    client = MongoClient(uri)
    db = client[pipeline.db]
    shapes = fifty_collections()
    names = [s.name for s in shapes]
    for name in names + ["skipped"]:
        db.create_collection(name)
    pipeline.mongo_uri = f"{uri}&appName={app_name}"
    connector = pipeline.connector(names, {"capture.scope": "database", "shards": SHARDS,
                                           "topic.creation.default.partitions": SHARDS,
                                           "snapshot.mode": "initial"})
    relay = pipeline.start(connector, "relay-scope")
    keys = [offset_key(pipeline.name, pipeline.db, "*", f"{i}-of-{SHARDS}") for i in range(SHARDS)]
    pipeline.wait_committed(relay, keys, timeout_s=120)

    cursors = change_stream_cursors(client, app_name)
    namespaces = sorted({c.get("ns") for c in cursors})
    assert len(cursors) == SHARDS, \
        f"{len(cursors)} change stream cursors of {app_name} open on {namespaces}, want {SHARDS} (one per shard)"
    assert namespaces == [f"{pipeline.db}.$cmd.aggregate"], f"cursors on {namespaces}, want the database's"
    assert open_cursors(client) == SHARDS, f"serverStatus counts {open_cursors(client)} open cursors"

    load = MixedLoad(db, 10_000, load_seed(record_property), batch_size=100, shapes=shapes)
    started = time.monotonic()
    log = load.run()
    db["skipped"].insert_many([{"_id": i} for i in range(100)])
    record_property("load_seconds", round(time.monotonic() - started, 1))

    expected = sum(log.expected_records(c) for c in names)
    changes, problems = read_changes(pipeline, names, min_records=expected, timeout_s=360, running=relay)
    record_property("records", sum(len(c) for c in changes.values()))
    record_property("seconds_to_read", round(time.monotonic() - started, 1))
    for coll in names:
        line = timeline(changes[coll])
        problems += check_collection(log, coll, line, pipeline.db)
        problems += final_state_problems(coll, line.by_key, documents_of(db[coll]))
    fail_on(problems, f"records of 50 collections through {SHARDS} database streams against the "
                      f"{log.count} operations applied (seed {load.seed})")

    assert pipeline.topic("skipped") not in existing_topics(pipeline.kafka), \
        "a collection the connector does not capture got a topic"
    after = change_stream_cursors(client, app_name)
    assert len(after) == SHARDS, f"after the load, {len(after)} change stream cursors are open, want {SHARDS}"
    assert relay.stop() == 0
    client.close()
