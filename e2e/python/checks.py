"""Checks a collection's change records against the log of the operations that caused them.

Per document, the records must be the operations in order: same count, same ops, no gaps, no
duplicates. The `after` of an insert or replace must be exactly the state the operation left.
The `after` of an update is looked up when mongorelay reads the event (fullDocument:
updateLookup), so it may be any state the document had from that update on (null once deleted),
never an older one, and later lookups never go back in time; the update itself is checked
exactly through updateDescription, which applied to the state before must give the state after.
"""
import copy
import datetime

from bson import json_util

from changes import event_identity

MAX_PROBLEMS_SHOWN = 30


def check_collection(log, coll, timeline, db):
    """Every problem of coll's records (a Timeline) against the operation log."""
    problems = list(timeline.problems)
    keys = {key for c, key in log.ops if c == coll}
    for key in sorted(keys):
        problems += check_document(log.ops[(coll, key)], timeline.by_key.get(key, []), db, coll, key)
    for key in sorted(timeline.by_key.keys() - keys):
        problems.append(f"{coll} {key}: {len(timeline.by_key[key])} records for a document the load never wrote")
    return problems


def check_document(ops, events, db, coll, key):
    """The problems of one document's records (tombstones folded in) against its operations."""
    where = f"{coll} {key}"
    want, got = [op.event_op for op in ops], [ev.op for ev in events]
    if want != got:
        i = next((i for i, (w, g) in enumerate(zip(want, got)) if w != g), min(len(want), len(got)))
        at = events[i].where() if i < len(events) else "the end of the topic"
        return [f"{where}: operations {' '.join(want)} but records {' '.join(got)}: "
                f"first difference at #{i} ({at})"]
    problems, lookup_floor = [], 0
    for i, (op, ev) in enumerate(zip(ops, events)):
        here = f"{where} #{i} {op.kind} ({ev.where()})"
        if (ev.source.get("db"), ev.source.get("collection")) != (db, coll):
            problems.append(f"{here}: source names {ev.source.get('db')}.{ev.source.get('collection')}")
        if op.kind == "delete":
            if ev.value.get("after") is not None:
                problems.append(f"{here}: a delete with an after")
            if not ev.tombstoned:
                problems.append(f"{here}: no tombstone follows the delete")
        elif op.kind == "update":
            problems += [f"{here}: {p}" for p in update_description_problems(op, ev.value.get("updateDescription"))]
            j = next((j for j in range(max(i, lookup_floor), len(ops)) if not after_problems(ev, ops[j].after)), None)
            if j is None:
                problems += [f"{here}: after is no state the document had from this update on, e.g. {p}"
                             for p in after_problems(ev, op.after)[:3]]
            else:
                lookup_floor = j
        else:
            problems += [f"{here}: {p}" for p in after_problems(ev, op.after)]
    return problems


def after_problems(ev, expected):
    """How the event's after, in both decodings, differs from the expected document (or None)."""
    writer, reader = ev.writer.tree, ev.reader.tree
    return (writer.diff(expected, ev.value.get("after"), writer.field_type("after"), "after")
            + reader.diff(expected, ev.latest.get("after"), reader.field_type("after"), "after(latest schema)"))


def update_description_problems(op, description):
    """Whether updateDescription, applied to the state before the update, gives the state after."""
    if description is None:
        return ["an update without updateDescription"]
    try:
        result = apply_description(op.before, description)
    except (KeyError, IndexError, TypeError, ValueError) as err:
        return [f"updateDescription {description} does not apply to the document: {err!r}"]
    if not same_values(result, op.after):
        return [f"updateDescription {description} of update {op.update} turns the document into "
                f"{result}, not {op.after}"]
    return []


def apply_description(before, description):
    """The document after applying an updateDescription (truncations, removals, then updates)."""
    doc = copy.deepcopy(before)
    for truncation in description.get("truncatedArrays") or []:
        parent, name = _walk(doc, truncation["field"])
        del parent[_index(parent, name)][truncation["newSize"]:]
    for path in description.get("removedFields") or []:
        parent, name = _walk(doc, path)
        if isinstance(parent, list):
            parent[int(name)] = None
        else:
            del parent[name]
    updated = description.get("updatedFields")
    for path, value in (json_util.loads(updated) if updated else {}).items():
        parent, name = _walk(doc, path)
        if isinstance(parent, list):
            i = int(name)
            parent.extend([None] * (i + 1 - len(parent)))
            parent[i] = value
        else:
            parent[name] = value
    return doc


def _walk(doc, path):
    """The container holding a dotted path's last segment (array indexes included), and that segment."""
    *head, name = path.split(".")
    for part in head:
        doc = doc[_index(doc, part)] if isinstance(doc, list) else doc.setdefault(part, {})
    return doc, name


def _index(container, name):
    return int(name) if isinstance(container, list) else name


def same_values(a, b):
    """Equality that minds types (1, 1.0 and True differ) but not how JSON spelled them
    (int32 and int64 are both integers; datetimes compare in UTC)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        return _utc(a) == _utc(b)
    return _kind(a) == _kind(b) and a == b


def _kind(value):
    return "int" if isinstance(value, int) and not isinstance(value, bool) else type(value).__name__


def _utc(value):
    return value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value


def dedupe(events):
    """Splits a document's events into first deliveries and repeats (same change event again).

    A repeat's tombstone counts for the first delivery: a crash may land between a delete and
    its tombstone, and the replay writes both again.
    """
    first, repeats = {}, []
    for ev in events:
        identity = event_identity(ev)
        if identity in first:
            first[identity].tombstoned |= ev.tombstoned
            repeats.append(ev)
        else:
            first[identity] = ev
    return list(first.values()), repeats


def fail_on(problems, what):
    """Fails the test with the first problems and their count, if there are any."""
    if problems:
        shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise AssertionError(f"{what}: {len(problems)} problems:\n  {shown}{more}")
