// Package avroschema infers evolving Avro record schemas from MongoDB documents and encodes raw
// BSON documents as Avro binary in them (document.mode=typed).
//
// # Lifecycle
//
// A task keeps an Encoder compiled from the latest registered schema and calls Append for every
// document. A document the schema covers costs its encoding and nothing else: no shape check,
// no allocation. When Append reports ErrNotCovered, the task infers the document's shape, merges
// it into the latest registered schema (fetched again on a registration race), registers the
// result and compiles a new Encoder:
//
//	shape, _ := avroschema.Infer(doc, opts)
//	next, _ := avroschema.Merge(latest, shape) // latest may be nil
//	// register next.String(), then
//	enc = avroschema.NewEncoder(next)
//
// Merge is deterministic, idempotent (merging a covered shape returns latest itself) and
// order-independent in the fields and types it yields, so nodes that merge concurrently
// converge. Field order is the one thing history decides: existing fields never move, new ones
// are appended sorted by key. Every version can read the data of every earlier version
// (BACKWARD_TRANSITIVE): fields are only added, all nullable with default null; unions only
// gain branches; int only widens to long or double.
//
// # Type mapping
//
// Every value position (field, array item, map value) is a union whose first branch is null.
//
//	BSON                     Avro
//	double                   double (bits copied: NaN payloads, ±Inf and -0 survive)
//	string                   string
//	document                 record <parent>.<field>_record, or map (see Maps), or string
//	                         "mongodb.type":"extjson" beyond MaxDepth
//	array                    array of the union of its elements' types
//	binary subtype 0         bytes
//	binary other subtypes    record mongorelay.bson.Binary {subtype: int, data: bytes}
//	                         (subtype 2 without its redundant inner length)
//	undefined                null
//	ObjectId                 string, 24 lowercase hex digits, "mongodb.type":"objectId"
//	boolean                  boolean
//	datetime                 long, logicalType timestamp-millis (negative before 1970)
//	null                     null
//	regex                    record mongorelay.bson.Regex {pattern: string, options: string}
//	DBPointer                record mongorelay.bson.DBPointer {ref: string, id: objectId string}
//	JavaScript               record mongorelay.bson.JavaScript {code: string}
//	symbol                   record mongorelay.bson.Symbol {symbol: string}
//	JavaScript with scope    record mongorelay.bson.JavaScriptWithScope {code: string,
//	                         scope: string, canonical Extended JSON, "mongodb.type":"extjson"}
//	int32                    int (widened to long or double when the position holds those)
//	timestamp                record mongorelay.bson.Timestamp {t: long, i: long}
//	int64                    long
//	decimal128               string "mongodb.type":"decimal128": the exact decimal string
//	                         ("1.50", "-0", "NaN", "-Infinity", "1.2E+6144"); Avro's decimal
//	                         has one fixed scale and no NaN, infinities or -0
//	minKey, maxKey           records mongorelay.bson.MinKey {} and mongorelay.bson.MaxKey {}
//
// An Avro union holds one branch per Avro type, so kinds that share one stay apart this way:
// the most general present takes the bare type (string before objectId before decimal128
// before extjson; int64 before datetime) and the others are wrapped in one-field records
// mongorelay.bson.ObjectId, Decimal128, ExtJSON and DateTime {value}. When a more general kind
// joins a union later, values written before it are read, with the new schema, through the
// bare branch: the same text or number, without the hint. int64 and double are never merged
// (a double cannot hold every int64): a position that held both is [null, long, double].
//
// # Names
//
// A valid Avro name ([A-Za-z_][A-Za-z0-9_]*) is kept. Any other key becomes its cleaned form
// (invalid characters to '_', '_' before a leading digit) plus '_' and a base-36 FNV-1a hash of
// the key, and the key is kept in the field property "mongodb.name": "a.b" is a_b_<hash>, never
// a_b, whatever order the keys arrive in. Two keys that still sanitize alike are an error. A
// key that is not valid UTF-8 is an error: the schema's JSON cannot carry it.
//
// Documents found at one field path, directly, in arrays or as map values, share one record
// named <parent record>.<sanitized field>_record (the suffix keeps simple names from being
// primitive type names); the root record is Options.Name.
//
// # Maps
//
// A subdocument is a map when it has more than MaxFields keys or when all its keys look like
// data: integers, 24-hex ObjectIds, UUIDs, ISO dates. The decision is made per document, from
// the document alone, so inference and encoding agree and a position can hold a record branch
// and a map branch side by side: a registered record never turns into a map.
//
// # Fidelity limits
//
// A missing field and a null or undefined one all encode as null. Decimal128 NaN payloads and
// sign, and non-canonical encodings, do not survive the decimal string. Strings are copied byte
// for byte; Extended JSON (beyond MaxDepth, scopes) replaces invalid UTF-8 with U+FFFD.
// Duplicate keys in a document are an error naming the path, never a silent drop.
package avroschema
