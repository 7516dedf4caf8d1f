"""Acceptance of capture from the first operation (issue 19): collections created while a
connector runs are streamed from before their creation, never copied.

A connector starts on an empty database; a writer then creates the collections and applies a
mixed load at full speed, so that documents are inserted and deleted before mongorelay's next
listing of the collections (every 10 s) finds them. Every document's operations must arrive
exactly, in order, as c/u/d: a copy would fold them into one r per surviving document, and
lose the documents deleted meanwhile.
"""
import json
import time
import urllib.request

from changes import timeline
from checks import after_problems, check_collection, fail_on
from test_standalone import documents_of, final_state_problems, load_seed, read_changes
from workload import COLLECTIONS, MixedLoad


def test_collections_created_while_running_arrive_from_their_first_operation(pipeline, mongo, record_property):
    db = mongo[pipeline.db]
    assert pipeline.db not in mongo.list_database_names()
    relay = pipeline.start(pipeline.connector(COLLECTIONS, {"snapshot.mode": "initial"}), "relay")
    # The first listing (no collection yet) is what later ones are compared with.
    relay.wait_for_line(r"connector tasks listed", timeout_s=60)

    load = MixedLoad(db, 10_000, load_seed(record_property))
    started = time.monotonic()
    log = load.run()
    record_property("load_seconds", round(time.monotonic() - started, 1))
    inserted_and_deleted = sum(1 for ops in log.ops.values() if ops[0].kind == "insert" and ops[-1].kind == "delete")
    assert inserted_and_deleted > 0, "the load deleted none of the documents it inserted"

    for coll in COLLECTIONS:
        relay.wait_for_line(rf"a new collection: streaming it from the cluster time.*{coll}", timeout_s=60)
    expected = sum(log.expected_records(c) for c in COLLECTIONS)
    changes, problems = read_changes(pipeline, COLLECTIONS, min_records=expected, running=relay)
    for coll in COLLECTIONS:
        line = timeline(changes[coll])
        snapshot_reads = [c for c in changes[coll] if c.value is not None and c.op == "r"]
        problems += [f"{coll}: {len(snapshot_reads)} snapshot reads (r): the collection was copied, not streamed"] \
            if snapshot_reads else []
        problems += check_collection(log, coll, line, pipeline.db)
        problems += final_state_problems(coll, line.by_key, documents_of(db[coll]))
    fail_on(problems, f"records against the {log.count} operations applied on new collections, "
                      f"{inserted_and_deleted} documents inserted and deleted (seed {load.seed})")
    assert relay.stop() == 0


def test_a_collection_added_to_the_include_list_is_copied_then_streamed(pipeline, mongo, record_property):
    """A running connector's include list gains a collection that has documents: they arrive as
    r, then the collection's changes, per document in order, while the collections captured
    all along lose and repeat nothing."""
    db = mongo[pipeline.db]
    streamed, added = ["orders", "people"], "events"
    for coll in COLLECTIONS:
        db.create_collection(coll)
    connector = pipeline.connector(streamed, {"snapshot.mode": "initial"})
    relay = pipeline.start(connector, "relay")
    pipeline.wait_streaming(relay, streamed)

    load = MixedLoad(db, 10_000, load_seed(record_property))
    load.run(until=1_500)  # every collection written; events not captured yet
    config = pipeline.connector(streamed + [added], {"snapshot.mode": "initial"})["config"]
    request = urllib.request.Request(f"{pipeline.rest_url}/connectors/{pipeline.name}/config", method="PUT",
                                     data=json.dumps(config).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200, f"PUT config: {answer.status}"
    switched_at = load.log.count
    log = load.run(until=3_000)  # while the added collection is copied

    expected = sum(log.expected_records(c) for c in streamed)
    changes, problems = read_changes(pipeline, COLLECTIONS, min_records=expected, running=relay)
    for coll in streamed:
        line = timeline(changes[coll])
        problems += check_collection(log, coll, line, pipeline.db)
    documents = documents_of(db[added])
    line = timeline(changes[added])
    problems += list(line.problems)
    problems += final_state_problems(added, line.by_key, documents)
    copied = 0
    for (coll, key), ops in log.ops.items():
        if coll != added:
            continue
        records = line.by_key.get(key, [])
        kinds = [r.op for r in records]
        if kinds[:1] == ["r"]:
            copied += 1
            kinds = kinds[1:]
            if not any(not after_problems(records[0], op.after) for op in ops if op.after is not None):
                problems.append(f"{added} {key}: its r record is no state the document ever had")
        want = [op.event_op for op in ops]
        if kinds and want[len(want) - len(kinds):] != kinds:
            problems.append(f"{added} {key}: records {' '.join(r.op for r in records)} are not r and then the last "
                            f"of its operations {' '.join(want)}")
        if "r" in kinds:
            problems.append(f"{added} {key}: an r record after its changes")
    fail_on(problems, f"records of {streamed} all along and of {added} added after {switched_at} operations "
                      f"(seed {load.seed})")
    assert copied > 0, f"no document of {added} arrived as r"
    assert relay.stop() == 0
