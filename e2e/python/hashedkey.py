"""MongoDB's hashed-index key of a value ($toHashedIndexKey), in Python, and the shard of an _id.

Written from the server's BSONElementHasher::hash64 (src/mongo/db/hasher.cpp), not from
mongorelay's Go code, so that the shard header mongorelay puts on a record can be checked by an
independent implementation: MD5 over

    seed                        int32 little-endian (0 for hashed indexes and $toHashedIndexKey)
    canonical type              int32 little-endian (canonicalizeBSONType: every number is 10, ...)
    payload                     numbers: the value as an int64 (safeNumberLongForHash: a double
                                  truncates toward zero, NaN is 0, out-of-range clamps, 2^63 is
                                  -2^63); strings: int32 length counting the NUL, UTF-8 bytes,
                                  NUL; documents and arrays: each element as (canonical type,
                                  field name and NUL, payload), then the end-of-object element
                                  (canonical type 0); other types: their BSON value bytes

of which the first 8 digest bytes, read as a little-endian int64, are the hash. The top-level
value has no field name. Every type an _id can have is covered except Decimal128, DBPointer and
code with scope, which the tests never use as _ids (shard_of refuses them rather than guess).
"""
import datetime
import hashlib
import math
import re
import struct

from bson import Binary, Code, DatetimeMS, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

# canonicalizeBSONType (src/mongo/bson/bsontypes.h).
CANON_MINKEY, CANON_EOO, CANON_NULL, CANON_NUMBER, CANON_STRING = -1, 0, 5, 10, 15
CANON_OBJECT, CANON_ARRAY, CANON_BINARY, CANON_OBJECTID, CANON_BOOL = 20, 25, 30, 35, 40
CANON_DATE, CANON_TIMESTAMP, CANON_REGEX, CANON_CODE, CANON_MAXKEY = 45, 47, 50, 60, 127

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def hashed_key(value, seed=0):
    """The server's hash64 of value (a pymongo/bson value) with seed: what $toHashedIndexKey returns."""
    digest = hashlib.md5(struct.pack("<i", seed) + _element(value)).digest()
    return struct.unpack("<q", digest[:8])[0]


def shard_of(doc_id, n):
    """The shard, in [0, n), of the document with this _id: ((h mod n) + n) mod n, where mod keeps
    the dividend's sign as MongoDB's $mod does (DESIGN.md section 1)."""
    return (_truncated_mod(hashed_key(doc_id), n) + n) % n


def shard_name(doc_id, n):
    """The shard header value ("i-of-n") the record of a document with this _id must carry."""
    return f"{shard_of(doc_id, n)}-of-{n}"


def _truncated_mod(h, n):
    """h mod n with the sign of h (C's % and $mod), exact for any int64 (math.fmod is not)."""
    r = abs(h) % n
    return -r if h < 0 else r


def _element(value):
    """The canonical type and payload of one value, without a field name."""
    canon, payload = _typed(value)
    return struct.pack("<i", canon) + payload


def _typed(value):
    # bool before int: True is an int to Python, a boolean to BSON.
    if isinstance(value, bool):
        return CANON_BOOL, b"\x01" if value else b"\x00"
    if isinstance(value, (int, Int64)):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{value} does not fit a BSON int64")
        return CANON_NUMBER, struct.pack("<q", int(value))
    if isinstance(value, float):
        return CANON_NUMBER, struct.pack("<q", _double_for_hash(value))
    if isinstance(value, Code):  # a str subclass: before str
        if value.scope is not None:
            raise ValueError("code with scope is not supported")
        return CANON_CODE, _string(str(value))
    if isinstance(value, str):
        return CANON_STRING, _string(value)
    if isinstance(value, ObjectId):
        return CANON_OBJECTID, value.binary
    if value is None:
        return CANON_NULL, b""
    if isinstance(value, MinKey):
        return CANON_MINKEY, b""
    if isinstance(value, MaxKey):
        return CANON_MAXKEY, b""
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        millis = (aware - EPOCH) // datetime.timedelta(milliseconds=1)
        return CANON_DATE, struct.pack("<q", millis)
    if isinstance(value, DatetimeMS):  # a date outside Python's datetime range
        return CANON_DATE, struct.pack("<q", int(value))
    if isinstance(value, Timestamp):
        return CANON_TIMESTAMP, struct.pack("<II", value.inc, value.time)
    if isinstance(value, (bytes, Binary)):
        subtype = value.subtype if isinstance(value, Binary) else 0
        return CANON_BINARY, struct.pack("<iB", len(value), subtype) + bytes(value)
    if isinstance(value, Regex):
        return CANON_REGEX, _cstring(value.pattern) + _cstring(_regex_flags(value.flags))
    if isinstance(value, dict):
        return CANON_OBJECT, _elements(value.items())
    if isinstance(value, (list, tuple)):
        return CANON_ARRAY, _elements((str(i), v) for i, v in enumerate(value))
    raise ValueError(f"hashing {type(value).__name__} values is not supported")


def _elements(items):
    """A document's payload: (canonical type, name, NUL, payload) per field, then end-of-object."""
    out = bytearray()
    for name, v in items:
        canon, payload = _typed(v)
        out += struct.pack("<i", canon) + _cstring(name) + payload
    return bytes(out + struct.pack("<i", CANON_EOO))


def _string(s):
    data = s.encode("utf-8")
    return struct.pack("<i", len(data) + 1) + data + b"\x00"


def _cstring(s):
    data = s.encode("utf-8")
    if b"\x00" in data:
        raise ValueError(f"{s!r} holds a NUL")
    return data + b"\x00"


def _regex_flags(flags):
    """pymongo keeps Regex flags as re flags or a string; BSON stores the letters, sorted."""
    if isinstance(flags, str):
        return "".join(sorted(flags))
    letters = {re.IGNORECASE: "i", re.LOCALE: "l", re.MULTILINE: "m", re.DOTALL: "s",
               re.UNICODE: "u", re.VERBOSE: "x"}
    return "".join(sorted(letter for flag, letter in letters.items() if flags & flag))


def _double_for_hash(d):
    """safeNumberLongForHash for a double: NaN is 0, 2^63 exactly is -2^63 (SERVER-37183, kept
    because indexes on disk hold it), beyond the int64 range clamps, else truncates toward zero."""
    if math.isnan(d):
        return 0
    if d == 2.0**63:
        return INT64_MIN
    if d > 2.0**63:
        return INT64_MAX
    if d < -(2.0**63):
        return INT64_MIN
    return int(d)
