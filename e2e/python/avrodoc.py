"""Compares a document as pymongo reads it with the same document decoded from an Avro record.

The comparison is driven by the Avro schema the record was decoded with, so it follows whatever
details the typed mapping settles on: field names map back through the field property
"mongodb.name", unions are resolved by the decoded value's Python type, and every BSON type must
decode to the Python type its Avro form implies (an int32 must not come back as a float, a date
must come back as a datetime; an int32 through an `int` branch, an int64 through a `long` one).
A field absent from a document decodes as null, a field set to null as the empty record of the
union's explicit-null branch (mongorelay.bson.Null): typed mode tells them apart.
"""
import datetime
import decimal
import json
import math

from bson import Binary, Decimal128, Int64, ObjectId

MISSING = object()  # a field the MongoDB document does not have

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
TIMESTAMP_UNITS = {"timestamp-millis": 1000, "timestamp-micros": 1_000_000,
                   "local-timestamp-millis": 1000, "local-timestamp-micros": 1_000_000}
# Schema attributes that hold structure or data rather than a type hint.
STRUCTURAL = {"type", "name", "namespace", "fields", "items", "values", "symbols", "default", "doc",
              "aliases", "size"}


class Schema:
    """An Avro schema (its JSON form) whose named types can be looked up by name."""

    def __init__(self, schema):
        self.root = json.loads(schema) if isinstance(schema, str) else schema
        self.names = {}
        self._collect(self.root, None)

    def _collect(self, t, namespace):
        if isinstance(t, list):
            for branch in t:
                self._collect(branch, namespace)
            return
        if not isinstance(t, dict):
            return
        if t.get("type") in ("record", "enum", "fixed"):
            namespace = t.get("namespace", namespace)
            name = t["name"]
            full = name if "." in name or not namespace else f"{namespace}.{name}"
            self.names[full] = t
            self.names.setdefault(name.rsplit(".", 1)[-1], t)
            namespace = full.rsplit(".", 1)[0] if "." in full else namespace
        for f in t.get("fields", ()):
            self._collect(f["type"], namespace)
        for key in ("items", "values"):
            if key in t:
                self._collect(t[key], namespace)

    def resolve(self, t):
        """The definition behind a reference to a named type; other types unchanged."""
        if isinstance(t, str) and t not in PRIMITIVES:
            try:
                return self.names.get(t) or self.names[t.rsplit(".", 1)[-1]]
            except KeyError:
                raise ValueError(f"schema refers to the unknown type {t!r}") from None
        return t

    def field_type(self, name, record=None):
        """The type of a record's field (of the root record by default)."""
        record = self.resolve(record if record is not None else self.root)
        for f in record["fields"]:
            if f["name"] == name:
                return f["type"]
        raise KeyError(f"record {record.get('name')!r} has no field {name!r}")

    def diff(self, expected, actual, t, path="", hints=()):
        """Every way actual (decoded with type t) differs from expected (as pymongo reads it).

        hints are the schema objects on the way (the field, then the type) whose properties may
        carry a logical hint such as "ObjectId" or "Decimal128".
        """
        t = self.resolve(t)
        if isinstance(t, list):
            return self._union(expected, actual, t, path, hints)
        if isinstance(t, dict):
            hints = hints + (t,)
            kind = t["type"]
            if kind == "record":
                return self._record(expected, actual, t, path)
            if kind == "array":
                return self._array(expected, actual, t, path)
            if kind == "map":
                return self._map(expected, actual, t, path)
            if kind == "enum":
                kind = "string"
            elif kind == "fixed":
                kind = "bytes"
            return _primitive(expected, actual, kind, t.get("logicalType"), path, hints)
        return _primitive(expected, actual, t, None, path, hints)

    def _union(self, expected, actual, branches, path, hints):
        if actual is None:
            if "null" not in branches:
                return [f"{path}: decoded null from a union without null"]
            return [] if _absent(expected) else [f"{path}: expected {_describe(expected)}, got null"]
        candidates = [b for b in branches if self._accepts(b, actual)]
        if not candidates:
            return [f"{path}: decoded {_describe(actual)} fits no branch of the union {branches}"]
        return min((self.diff(expected, actual, b, path, hints) for b in candidates), key=len)

    def _accepts(self, t, actual):
        """Whether a value decoded from union branch t can have actual's Python type."""
        t = self.resolve(t)
        kind = t["type"] if isinstance(t, dict) else t
        logical = t.get("logicalType") if isinstance(t, dict) else None
        if isinstance(actual, bool):
            return kind == "boolean"
        if isinstance(actual, datetime.datetime):
            return logical in TIMESTAMP_UNITS
        return {int: kind in ("int", "long"), float: kind in ("float", "double"),
                str: kind in ("string", "enum"), bytes: kind in ("bytes", "fixed"),
                dict: kind in ("record", "map"), list: kind == "array"}.get(type(actual), False)

    def _record(self, expected, actual, t, path):
        if _absent(expected):
            return [] if actual is None else [f"{path}: not in MongoDB, decoded a record"]
        if not isinstance(expected, dict) and [f["name"] for f in t["fields"]] == ["value"]:
            # A BSON kind wrapped in a one-field record to share a union with a more general kind
            # of the same Avro type (tasks/avroschema/README.md): the record's name is the hint.
            inner = actual.get("value") if isinstance(actual, dict) else actual
            return self.diff(expected, inner, t["fields"][0]["type"], path, ({"bson.kind": t["name"]},))
        if not isinstance(expected, dict) or not isinstance(actual, dict):
            return [f"{path}: expected {_describe(expected)}, got {_describe(actual)}"]
        problems, covered = [], set()
        for f in t["fields"]:
            original = f.get("mongodb.name", f["name"])
            covered.add(original)
            value = expected.get(original, MISSING)
            if value is None:
                problems += self._explicit_null(actual.get(f["name"]), f["type"], f"{path}.{original}")
                continue
            problems += self.diff(value, actual.get(f["name"]), f["type"], f"{path}.{original}", (f,))
        problems += [f"{path}.{name}: in MongoDB but in no field of the schema"
                     for name in expected if name not in covered]
        return problems

    def _explicit_null(self, actual, t, path):
        """A field set to null must decode as the empty record of an explicit-null branch."""
        t = self.resolve(t)
        markers = [b for b in (t if isinstance(t, list) else [t])
                   if isinstance(self.resolve(b), dict) and self.resolve(b).get("type") == "record"
                   and not self.resolve(b)["fields"] and _mentions(({"bson.kind": self.resolve(b)["name"]},), "null")]
        if not markers:
            return [f"{path}: set to null, but the union {t} has no explicit-null branch"]
        return [] if actual == {} else [f"{path}: set to null, decoded {_describe(actual)}"]

    def _array(self, expected, actual, t, path):
        if _absent(expected):
            return [] if actual is None else [f"{path}: not in MongoDB, decoded {_describe(actual)}"]
        if not isinstance(expected, list) or not isinstance(actual, list):
            return [f"{path}: expected {_describe(expected)}, got {_describe(actual)}"]
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} elements, got {len(actual)}"]
        problems = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            problems += self.diff(e, a, t["items"], f"{path}[{i}]")
        return problems

    def _map(self, expected, actual, t, path):
        if _absent(expected):
            return [] if actual is None else [f"{path}: not in MongoDB, decoded {_describe(actual)}"]
        if not isinstance(expected, dict) or not isinstance(actual, dict):
            return [f"{path}: expected {_describe(expected)}, got {_describe(actual)}"]
        if set(expected) != set(actual):
            return [f"{path}: map keys {sorted(actual)} differ from the document's {sorted(expected)}"]
        problems = []
        for k in expected:
            problems += self.diff(expected[k], actual[k], t["values"], f"{path}.{k}")
        return problems


def _primitive(expected, actual, kind, logical, path, hints):
    """Compares a scalar; each BSON type has exactly one acceptable decoded Python type."""
    if kind == "null" or _absent(expected) or actual is None:
        if _absent(expected) and actual is None:
            return []
        return [f"{path}: expected {_describe(expected)}, got {_describe(actual)}"]
    ok = False
    if isinstance(expected, bool):
        ok = isinstance(actual, bool) and actual == expected
    elif isinstance(expected, datetime.datetime):
        ok = (logical in TIMESTAMP_UNITS and isinstance(actual, datetime.datetime)
              and _utc(actual) == _utc(expected))
    elif isinstance(expected, int):
        ok = type(actual) is int and actual == expected
        if ok and kind != ("long" if isinstance(expected, Int64) else "int"):
            return [f"{path}: {'int64' if isinstance(expected, Int64) else 'int32'} read through an Avro {kind} branch"]
    elif isinstance(expected, float):
        ok = type(actual) is float and (actual == expected or math.isnan(actual) and math.isnan(expected))
    elif isinstance(expected, ObjectId):
        if isinstance(actual, str) and actual == str(expected) and not _mentions(hints, "objectid"):
            return [f"{path}: ObjectId decoded as a plain string: no property of the schema says ObjectId"]
        ok = isinstance(actual, str) and actual == str(expected)
    elif isinstance(expected, Decimal128):
        if isinstance(actual, str) and _same_decimal(actual, expected) and not _mentions(hints, "decimal"):
            return [f"{path}: Decimal128 decoded as a plain string: no property of the schema says Decimal128"]
        ok = isinstance(actual, str) and _same_decimal(actual, expected)
    elif isinstance(expected, str):
        ok = type(actual) is str and actual == expected
    elif isinstance(expected, (bytes, Binary)):
        ok = isinstance(actual, bytes) and bytes(actual) == bytes(expected)
    else:
        return [f"{path}: the comparator does not know BSON values like {_describe(expected)}"]
    return [] if ok else [f"{path}: expected {_describe(expected)}, got {_describe(actual)} (Avro {kind})"]


def _absent(value):
    return value is MISSING or value is None


def _utc(value):
    """A datetime as aware UTC (pymongo's are naive UTC, fastavro's aware)."""
    return value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value


def _same_decimal(text, expected):
    try:
        got = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return False
    want = expected.to_decimal()
    return str(got) == str(want) if got.is_nan() or want.is_nan() else got == want


def _mentions(hints, word):
    """Whether a property (not a structural attribute) of the hint objects names word."""
    for obj in hints:
        for key, value in obj.items():
            if key in STRUCTURAL:
                continue
            if word in key.lower().replace("_", "") or (
                    isinstance(value, str) and word in value.lower().replace("_", "")):
                return True
    return False


def _describe(value):
    if value is MISSING:
        return "nothing"
    text = repr(value)
    return f"{type(value).__name__} {text[:80] + '...' if len(text) > 80 else text}"
