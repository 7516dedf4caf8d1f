"""The load the acceptance tests apply to MongoDB, and the log of what it did to each document.

The log is the expected truth downstream: for every document, the operations applied to it in
order and its state after each. The generator is seeded (a failure names its seed) and checks
every bulk write's counts against the model, so a model that drifts from the server fails here
and not, misleadingly, in a pipeline check.

Documents are heterogeneous on purpose (the shapes a schema inferrer must survive): fields that
appear as the load goes on ("phases"), a counter that goes int32 -> int64 -> double, fields that
are strings in some documents and integers in others, arrays of nested documents, field names
that are not Avro names, ObjectId, string and integer _ids, dates, Decimal128 and binary.
"""
import copy
import datetime
import json
import random
import time
from dataclasses import dataclass, field

import bson
from bson import Decimal128, Int64, ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne

PHASES = 4  # ext1..ext3 appear in phases 1..3, so every collection's schema evolves 3 times
EPOCH = datetime.datetime(2024, 1, 1)
EVENT_OP = {"insert": "c", "update": "u", "replace": "u", "delete": "d"}


def canonical_id(doc_id):
    """The comparable form of an _id: its canonical extended JSON, re-serialized with sorted keys.

    The record key's `id` field holds canonical extended JSON; comparing parsed JSON (not the
    producer's bytes) lets both sides spell it with any spacing or key order.
    """
    return canonical_json(json_util.dumps(doc_id, json_options=CANONICAL_JSON_OPTIONS))


def canonical_json(text):
    """Re-serializes a JSON text deterministically."""
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Op:
    """One operation applied to one document, with the document's state around it."""
    kind: str            # insert, update, replace, delete
    coll: str
    doc_id: object
    update: dict | None  # the update document of an update
    before: dict | None  # the state before (None for an insert)
    after: dict | None   # the state after (None after a delete)

    @property
    def event_op(self):
        """The envelope `op` this operation must produce."""
        return EVENT_OP[self.kind]


@dataclass
class OperationLog:
    """Every operation applied, per document (key: (collection, canonical _id)), in order."""
    ops: dict = field(default_factory=dict)
    count: int = 0

    def add(self, op):
        self.ops.setdefault((op.coll, canonical_id(op.doc_id)), []).append(op)
        self.count += 1

    def final_states(self, coll):
        """The documents of coll as the model says they are now, keyed by canonical _id."""
        return {key: ops[-1].after for (c, key), ops in self.ops.items()
                if c == coll and ops[-1].after is not None}

    def expected_records(self, coll):
        """How many records coll's topic must hold: one per operation, plus a tombstone per delete."""
        return sum(len(ops) + sum(op.kind == "delete" for op in ops)
                   for (c, _), ops in self.ops.items() if c == coll)


# ------------------------------------------------------------------------ applying updates

def apply_update(doc, update):
    """Returns doc after the update operators $set, $unset and $push, as MongoDB applies them."""
    out = copy.deepcopy(doc)
    for path, value in update.get("$set", {}).items():
        parent, name = _parent(out, path, create=True)
        parent[name] = copy.deepcopy(value)
    for path in update.get("$unset", {}):
        parent, name = _parent(out, path, create=False)
        if parent is not None:
            parent.pop(name, None)
    for path, value in update.get("$push", {}).items():
        parent, name = _parent(out, path, create=True)
        parent.setdefault(name, []).append(copy.deepcopy(value))
    return out


def _parent(doc, path, create):
    """The sub-document holding the last segment of a dotted path, and that segment."""
    *head, name = path.split(".")
    for part in head:
        if part not in doc:
            if not create:
                return None, name
            doc[part] = {}
        doc = doc[part]
    return doc, name


def same_bson(a, b):
    """Whether two documents are byte-identical in BSON, types and field order included.

    MongoDB writes no oplog entry (so no change event) for an update that changes nothing; the
    generator uses this to never issue one.
    """
    return bson.encode(a) == bson.encode(b)


# ---------------------------------------------------------------------- document shapes

def _date(rng):
    """A datetime as pymongo returns it: naive UTC, millisecond precision."""
    return EPOCH + datetime.timedelta(milliseconds=rng.randrange(10**10))


def _counter(rng, phase):
    """The field `n`: int32 in phases 0-1, int64 in phase 2, double in phase 3."""
    if phase < 2:
        return rng.randrange(1000)
    if phase == 2:
        return Int64(2**40 + rng.randrange(1000))
    return rng.randrange(1000) + 0.5


def _extensions(rng, phase):
    """The fields that only exist from a phase on, so the schema grows during the load."""
    ext = {}
    if phase >= 1:
        ext["ext1"] = {"channel": rng.choice(["web", "shop", "phone"]), "score": rng.randrange(100)}
    if phase >= 2:
        ext["ext2"] = [_date(rng) for _ in range(rng.randrange(3))]
    if phase >= 3:
        ext["ext3"] = rng.random() < 0.5
    return ext


class Orders:
    """ObjectId _ids; Decimal128, dates, and an array of nested item documents."""
    name = "orders"

    def new_id(self, rng):
        return ObjectId()

    def document(self, rng, phase, doc_id):
        return {"_id": doc_id, "customer": f"c{rng.randrange(500)}",
                "status": rng.choice(["new", "paid", "shipped"]),
                "total": Decimal128(f"{rng.randrange(10000)}.{rng.randrange(100):02d}"),
                "created": _date(rng), "items": [self.item(rng) for _ in range(rng.randrange(4))],
                "tags": rng.sample(["gift", "rush", "b2b", "promo"], rng.randrange(3)),
                "n": _counter(rng, phase), **_extensions(rng, phase)}

    def item(self, rng):
        return {"sku": f"sku-{rng.randrange(100)}", "qty": rng.randrange(1, 5),
                "unit price": rng.randrange(1, 10000) / 100,
                "dims": {"w": rng.randrange(1, 50), "h": rng.randrange(1, 50)}}

    def updates(self, rng, phase, doc):
        return [{"$set": {"status": rng.choice(["paid", "shipped", "returned"]), "n": _counter(rng, phase)}},
                {"$push": {"items": self.item(rng)}},
                {"$push": {"tags": rng.choice(["gift", "rush", "b2b", "promo"])}},
                {"$unset": {"tags": ""}},
                {"$set": {"total": Decimal128(f"{rng.randrange(10000)}.{rng.randrange(100):02d}")}},
                {"$set": _extensions(rng, phase)} if phase else {"$unset": {"items": ""}}]


class People:
    """String _ids (reused after deletes); names that are not Avro names; a str/int conflict."""
    name = "people"

    def new_id(self, rng):
        return f"p-{rng.randrange(3000):05d}"

    def document(self, rng, phase, doc_id):
        zip_code = rng.randrange(10000, 99999)
        return {"_id": doc_id, "name": rng.choice(["Ada", "Linus", "Grace", "Édouard"]),
                "first-name": rng.choice(["A", "L", "G"]), "9lives": rng.randrange(9),
                "age": rng.randrange(18, 99),
                "address": {"city": rng.choice(["Oslo", "Lyon", "Kyiv"]),
                            "zip": zip_code if phase and rng.random() < 0.5 else str(zip_code)},
                "emails": [f"u{rng.randrange(99)}@example.org" for _ in range(rng.randrange(3))],
                "avatar": rng.randbytes(rng.randrange(1, 16)), "active": rng.random() < 0.5,
                "n": _counter(rng, phase), **_extensions(rng, phase)}

    def updates(self, rng, phase, doc):
        return [{"$set": {"age": rng.randrange(18, 99), "n": _counter(rng, phase)}},
                {"$set": {"address.city": rng.choice(["Oslo", "Lyon", "Kyiv", "Lima"])}},
                {"$push": {"emails": f"n{rng.randrange(99)}@example.org"}},
                {"$unset": {"first-name": "", "9lives": ""}},
                {"$set": {"active": not doc.get("active", False), "avatar": rng.randbytes(4)}},
                {"$set": _extensions(rng, phase)} if phase else {"$unset": {"emails": ""}}]


class Events:
    """Integer _ids (reused after deletes); a field `code` that is a string or an integer."""
    name = "events"

    def new_id(self, rng):
        return rng.randrange(5000)

    def document(self, rng, phase, doc_id):
        return {"_id": doc_id, "kind": rng.choice(["click", "view", "buy"]), "at": _date(rng),
                "values": [rng.randrange(1000) / 8 for _ in range(rng.randrange(4))],
                "code": self.code(rng, phase),
                "payload": {"level": rng.randrange(5), "labels": [{"k": "a", "v": rng.randrange(9)}]},
                "n": _counter(rng, phase), **_extensions(rng, phase)}

    def code(self, rng, phase):
        return rng.randrange(100) if phase and rng.random() < 0.5 else f"E{rng.randrange(100)}"

    def updates(self, rng, phase, doc):
        return [{"$set": {"code": self.code(rng, phase), "n": _counter(rng, phase)}},
                {"$push": {"values": rng.randrange(1000) / 8}},
                {"$push": {"payload.labels": {"k": "b", "v": rng.randrange(9)}}},
                {"$set": {"payload.level": rng.randrange(5, 10)}},
                {"$unset": {"values": ""}},
                {"$set": _extensions(rng, phase)} if phase else {"$set": {"kind": "other"}}]


SHAPES = (Orders(), People(), Events())
COLLECTIONS = tuple(shape.name for shape in SHAPES)


# ----------------------------------------------------------------------------- the load

class MixedLoad:
    """Mixed inserts, updates, replaces and deletes over the collections of shapes (SHAPES by default).

    Each round sends one ordered bulk_write to one collection, so a document can be touched
    several times in one batch and the server still applies the operations in log order.
    A few "hot" documents take a share of the updates so that some documents have long
    per-document sequences, where reordering would show.
    """

    WEIGHTS = {"insert": 35, "update": 35, "replace": 15, "delete": 15}

    def __init__(self, db, total_ops, seed, batch_size=250, shapes=SHAPES):
        self.db, self.total, self.batch_size, self.shapes = db, total_ops, batch_size, shapes
        self.seed = seed
        self.rng = random.Random(seed)
        self.log = OperationLog()
        self.live = {shape.name: {} for shape in shapes}  # canonical id -> current state

    def run(self, pause_s=0.0, until=None):
        """Applies every operation (or the first `until` of them), pausing between batches (to
        spread the load over time); returns the log."""
        while self.log.count < min(self.total, until or self.total):
            self.round(self.shapes[(self.log.count // self.batch_size) % len(self.shapes)])
            time.sleep(pause_s)
        return self.log

    def progress(self):
        """The share of the operations applied so far (safe to read from another thread)."""
        return self.log.count / self.total

    def phase(self):
        return min(PHASES - 1, self.log.count * PHASES // self.total)

    def round(self, shape):
        """Plans one batch for one collection, writes it, and checks the server's counts."""
        n = min(self.batch_size, self.total - self.log.count)
        phase = self.phase()
        planned = [self.plan(shape, phase) for _ in range(n)]
        result = self.db[shape.name].bulk_write([request for request, _ in planned], ordered=True)
        ops = [op for _, op in planned]
        kinds = [op.kind for op in ops]
        planned_counts = (kinds.count("insert"), kinds.count("update") + kinds.count("replace"),
                          kinds.count("delete"))
        server_counts = (result.inserted_count, result.modified_count, result.deleted_count)
        if server_counts != planned_counts:
            raise AssertionError(f"seed {self.seed}: MongoDB disagrees with the model on {shape.name}: "
                                 f"planned (inserted, modified, deleted) = {planned_counts}, "
                                 f"server {server_counts}")
        for op in ops:
            self.log.add(op)

    def plan(self, shape, phase):
        """Chooses the next operation on shape's collection and updates the model."""
        live = self.live[shape.name]
        kind = self.rng.choices(list(self.WEIGHTS), weights=list(self.WEIGHTS.values()))[0]
        if not live:
            kind = "insert"
        if kind == "insert":
            return self.insert(shape, phase, live)
        key = self.pick(live)
        before = live[key]
        doc_id = before["_id"]
        if kind == "delete":
            del live[key]
            return DeleteOne({"_id": doc_id}), Op("delete", shape.name, doc_id, None, before, None)
        if kind == "replace":
            after = shape.document(self.rng, phase, doc_id)
            if same_bson(after, before):
                return self.plan(shape, phase)
            live[key] = after
            replacement = {k: v for k, v in after.items() if k != "_id"}
            return ReplaceOne({"_id": doc_id}, replacement), Op("replace", shape.name, doc_id, None, before, after)
        update = self.rng.choice(shape.updates(self.rng, phase, before))
        after = apply_update(before, update)
        if same_bson(after, before):
            return self.plan(shape, phase)
        live[key] = after
        return UpdateOne({"_id": doc_id}, update), Op("update", shape.name, doc_id, update, before, after)

    def insert(self, shape, phase, live):
        doc_id = shape.new_id(self.rng)
        while canonical_id(doc_id) in live:
            doc_id = shape.new_id(self.rng)
        doc = shape.document(self.rng, phase, doc_id)
        live[canonical_id(doc_id)] = doc
        return InsertOne(copy.deepcopy(doc)), Op("insert", shape.name, doc_id, None, None, doc)

    def pick(self, live):
        """A live document: a hot one (one of the first ten ids in insertion order) a fifth of the time."""
        keys = list(live)
        if self.rng.random() < 0.2:
            return self.rng.choice(keys[:10])
        return self.rng.choice(keys)
