"""Acceptance of ad-hoc incremental snapshots (issue 19, item 3; DESIGN.md 16).

A running connector is asked to copy collections again, with POST /connectors/{name}/snapshot or
an execute-snapshot signal document, while a writer keeps changing the same documents. Each
collection is copied in chunks between watermarks of its change stream, so that per document an
independent consumer sees the operations exactly, in order, with each copied document (op r,
source.snapshot "incremental") placed where it was the document's state: the state its
preceding change left, never a deleted document, never an older state after a newer change.
"""
import json
import threading
import urllib.error
import urllib.request

from changes import timeline
from checks import after_problems, check_collection, check_document, fail_on
from test_standalone import documents_of, final_state_problems, load_seed, read_changes
from workload import COLLECTIONS, MixedLoad


def call(method, url, body=None, content_type="application/json"):
    """The status and decoded JSON answer of a REST call."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        text = err.read()
        return err.code, json.loads(text) if text else None


def incremental_problems(log, coll, line, db):
    """The problems of coll's records when it was copied while it streamed: without the copied
    documents, the records are the operations exactly (check_document); each copied document
    follows a change of its document and is exactly the state that change left. Returns them
    with how many copied documents were seen."""
    problems, copied = list(line.problems), 0
    keys = {key for c, key in log.ops if c == coll}
    for key in sorted(keys):
        ops, records = log.ops[(coll, key)], line.by_key.get(key, [])
        problems += check_document(ops, [r for r in records if r.op != "r"], db, coll, key)
        changes = 0  # the changes before the record
        for r in records:
            if r.op != "r":
                changes += 1
                continue
            copied += 1
            here = f"{coll} {key} r ({r.where()}) after {changes} changes"
            if r.source.get("snapshot") != "incremental":
                problems.append(f"{here}: source.snapshot is {r.source.get('snapshot')!r}, not 'incremental'")
            if changes == 0 or changes > len(ops):
                problems.append(f"{here}: no change of the document is before it")
            elif ops[changes - 1].after is None:
                problems.append(f"{here}: the document was deleted by the change before it (a stale r)")
            else:
                problems += [f"{here}: not the state its preceding {ops[changes - 1].kind} left: {p}"
                             for p in after_problems(r, ops[changes - 1].after)[:3]]
    problems += [f"{coll} {key}: {len(line.by_key[key])} records for a document the load never wrote"
                 for key in sorted(line.by_key.keys() - keys)]
    return problems, copied


def test_an_adhoc_snapshot_under_load_keeps_every_documents_order(pipeline, mongo, record_property):
    db = mongo[pipeline.db]
    copied_colls, other = ["orders", "people"], "events"
    for coll in COLLECTIONS:
        db.create_collection(coll)
    # Small chunks: many watermark windows, each one crossed by the writer's changes.
    relay = pipeline.start(pipeline.connector(COLLECTIONS, {"max.batch.size": "100"}), "relay")
    pipeline.wait_streaming(relay, COLLECTIONS)

    load = MixedLoad(db, 6_000, load_seed(record_property))
    load.run(until=2_000)  # documents to copy
    writer = threading.Thread(target=load.run)  # the rest at full speed, while they are copied
    writer.start()
    try:
        status, answer = call("POST", f"{pipeline.rest_url}/connectors/{pipeline.name}/snapshot",
                              {"collections": [f"{pipeline.db}.{c}" for c in copied_colls]})
        assert status == 202, f"POST snapshot: {status} {answer}"
        assert answer["id"] > 0 and answer["collections"] == [f"{pipeline.db}.{c}" for c in copied_colls], answer
        during_load = writer.is_alive()
        for coll in copied_colls:
            relay.wait_for_line(rf"incremental snapshot copied.*\.{coll}#", timeout_s=120)
        copy_ended_during_load = writer.is_alive()
    finally:
        writer.join()
    record_property("requested_during_load", during_load)
    record_property("copied_during_load", copy_ended_during_load)
    assert during_load, "the writer ended before the snapshot was requested: the copy raced nothing"

    log = load.log
    expected = sum(log.expected_records(c) for c in COLLECTIONS)
    changes, problems = read_changes(pipeline, COLLECTIONS, min_records=expected, running=relay)
    for coll in copied_colls:
        line = timeline(changes[coll])
        coll_problems, copied = incremental_problems(log, coll, line, pipeline.db)
        problems += coll_problems
        problems += final_state_problems(coll, line.by_key, documents_of(db[coll]))
        record_property(f"{coll}_copied", copied)
        if copied == 0:
            problems.append(f"{coll}: no document arrived as r")
    line = timeline(changes[other])
    problems += check_collection(log, other, line, pipeline.db)
    fail_on(problems, f"records of {copied_colls} copied again under {log.count} operations, and of {other} "
                      f"(seed {load.seed})")
    assert relay.stop() == 0


def test_a_signal_document_asks_for_a_snapshot_and_the_api_refuses_what_it_cannot_do(pipeline, mongo, record_property):
    db = mongo[pipeline.db]
    signals = "signals"
    for coll in (*COLLECTIONS, signals):
        db.create_collection(coll)
    connector = pipeline.connector([*COLLECTIONS, signals],
                                   {"signal.data.collection": f"{pipeline.db}.{signals}", "max.batch.size": "50"})
    relay = pipeline.start(connector, "relay")
    pipeline.wait_streaming(relay, [*COLLECTIONS, signals])
    load = MixedLoad(db, 2_000, load_seed(record_property))
    load.run(until=1_000)
    writer = threading.Thread(target=load.run)
    writer.start()
    try:
        db[signals].insert_one({"_id": "ad-hoc-1", "type": "execute-snapshot",
                                "data": {"data-collections": [f"{pipeline.db}.events"], "type": "incremental"}})
        relay.wait_for_line(r"incremental snapshot copied.*\.events#", timeout_s=120)
    finally:
        writer.join()

    log = load.log
    expected = sum(log.expected_records(c) for c in COLLECTIONS)
    changes, problems = read_changes(pipeline, COLLECTIONS, min_records=expected, running=relay)
    line = timeline(changes["events"])
    coll_problems, copied = incremental_problems(log, "events", line, pipeline.db)
    problems += coll_problems + final_state_problems("events", line.by_key, documents_of(db["events"]))
    if copied == 0:
        problems.append("events: no document arrived as r")
    for coll in ("orders", "people"):
        problems += check_collection(log, coll, timeline(changes[coll]), pipeline.db)
    fail_on(problems, f"records after the signal asked for events (seed {load.seed})")

    url = f"{pipeline.rest_url}/connectors/{pipeline.name}/snapshot"
    refusals = [
        ("an unknown connector", f"{pipeline.rest_url}/connectors/nope/snapshot", {"collections": [f"{pipeline.db}.orders"]},
         "application/json", 404),
        ("a collection the connector does not stream", url, {"collections": [f"{pipeline.db}.nothere"]}, "application/json", 400),
        ("no collection", url, {"collections": []}, "application/json", 400),
        ("a body that is not JSON", url, b"orders", "text/plain", 415),
    ]
    for what, target, body, content_type, want in refusals:
        status, answer = call("POST", target, body, content_type)
        assert status == want and answer["error_code"] == want, f"{what}: {status} {answer}, want {want}"
    status, _ = call("PUT", f"{pipeline.rest_url}/connectors/{pipeline.name}/stop")
    assert status == 204, f"stop: {status}"
    status, answer = call("POST", url, {"collections": [f"{pipeline.db}.orders"]})
    assert status == 409 and "resume" in answer["message"], f"a STOPPED connector: {status} {answer}"
    assert relay.stop() == 0
