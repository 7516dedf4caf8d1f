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
// gain branches; an int32 joins a long branch only where a legacy schema made long bare.
//
// # Type mapping
//
// Every value position (field, array item, map value) is a union whose first branch is null.
// In a field, null means absent; an explicit null or undefined is the empty record
// mongorelay.bson.Null, so that a consumer can replay $unset exactly. The mapping, type by
// type, is in README.md; in short: double, string, boolean and int32 are their Avro types,
// datetime is long timestamp-millis, documents are records or maps, arrays arrays, and every
// other kind is a record of namespace mongorelay.bson.
//
// Avro readers resolve an old value to the first branch of the newest union with its Avro type
// or one it promotes to (fastavro ignores logical types and properties; string and bytes
// promote to each other). So the kinds a reader cannot tell apart form families (long:
// datetime, int64; string and bytes: string, ObjectId, Decimal128, Extended JSON, binary
// subtype 0) and only the owner, datetime or string, is ever written bare; the others always
// go into one-field records {value}. A value is written the same way whatever joins its union
// later, so every earlier value is read with the latest schema through its own branch. int32
// keeps its int branch beside int64 and double. Unions registered under the earlier mapping
// (the most general kind present bare) keep their bare branches and new kinds of their family
// join wrapped.
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
// Undefined reads as null. Decimal128 NaN payloads and sign, and non-canonical encodings, do
// not survive the decimal string. Strings are copied byte for byte; Extended JSON (beyond MaxDepth, scopes) replaces invalid UTF-8 with U+FFFD.
// Duplicate keys in a document are an error naming the path, never a silent drop.
package avroschema
