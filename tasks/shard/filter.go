package shard

import (
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ServerStage is the change stream stage (shard.filter=server) that keeps the events of shard i
// of n, for the server to apply before anything crosses the network:
//
//	{$match: {$expr: {$or: [
//	  {$eq: [{$type: "$documentKey._id"}, "missing"]},
//	  {$eq: [{$mod: [{$add: [{$mod: [{$toHashedIndexKey: "$documentKey._id"}, n]}, n]}, n]}, i]}]}}}
//
// Events without documentKey._id (drop, rename, dropDatabase, invalidate) pass on every shard.
// $mod, like Go's %, keeps the dividend's sign, so the add-then-mod makes the result Of's. Every
// operand is an int64 so each step stays a long on the server. $toHashedIndexKey came with
// resharding in 5.0 (SERVER-49214, also backported to 4.2.24); servers without it refuse the
// stage when the stream opens (see IsUnsupported). It panics on what Validate refuses.
func ServerStage(i, n int) bson.D {
	mustValidate(i, n)
	n64 := int64(n)
	shard := op("$mod", bson.A{
		op("$add", bson.A{
			op("$mod", bson.A{op("$toHashedIndexKey", "$documentKey._id"), n64}),
			n64,
		}),
		n64,
	})
	return bson.D{{Key: "$match", Value: op("$expr", op("$or", bson.A{
		op("$eq", bson.A{op("$type", "$documentKey._id"), "missing"}),
		op("$eq", bson.A{shard, int64(i)}),
	}))}}
}

// op is the one-field document {name: arg}, the shape of every aggregation operator.
func op(name string, arg any) bson.D {
	return bson.D{{Key: name, Value: arg}}
}

// ClientFilter is the shard.filter=client test for shard i of n: it reports whether a raw change
// event belongs to the shard, by the same rule as ServerStage. Events without documentKey._id
// are kept on every shard. It reads the event in place and allocates nothing for usual _ids.
// It panics on what Validate refuses.
func ClientFilter(i, n int) func(event bson.Raw) (keep bool, err error) {
	mustValidate(i, n)
	return func(event bson.Raw) (bool, error) {
		id, found, err := documentKeyID(event)
		if err != nil {
			return false, fmt.Errorf("shard filter %d-of-%d: %w", i, n, err)
		}
		if !found {
			return true, nil
		}
		s, err := ForID(id, n)
		if err != nil {
			return false, fmt.Errorf("shard filter %d-of-%d: %w", i, n, err)
		}
		return s == i, nil
	}
}

// documentKeyID finds documentKey._id in a change event. found is false where the server's
// "$documentKey._id" would be missing: no documentKey, documentKey not a document, or no _id in
// it.
func documentKeyID(event []byte) (id bson.RawValue, found bool, err error) {
	n, err := documentLen(event)
	if err != nil {
		return id, false, fmt.Errorf("change event: %w", err)
	}
	if n != len(event) {
		return id, false, fmt.Errorf("change event: length %d, %d bytes", n, len(event))
	}
	t, key, found, err := field(event, "documentKey")
	if err != nil || !found || t != bson.TypeEmbeddedDocument {
		return id, false, err
	}
	t, v, found, err := field(key, "_id")
	if err != nil || !found {
		return id, false, err
	}
	return bson.RawValue{Type: t, Value: v}, true, nil
}

// field returns the first element called name in doc, whose length prefix and final NUL
// documentLen has checked.
func field(doc []byte, name string) (t bson.Type, v []byte, found bool, err error) {
	end := len(doc) - 1
	for p := 4; p < end; {
		t = bson.Type(doc[p])
		key, rest, err := cstring(doc[p+1 : end])
		if err != nil {
			return 0, nil, false, fmt.Errorf("field name at byte %d: %w", p+1, err)
		}
		n, err := valueLen(t, rest)
		if err != nil {
			return 0, nil, false, fmt.Errorf("field %q: %w", key, err)
		}
		if string(key) == name {
			return t, rest[:n], true, nil
		}
		p += 1 + len(key) + 1 + n
	}
	return 0, nil, false, nil
}

// Error codes a server answers with when it cannot run $toHashedIndexKey.
const (
	// codeInvalidPipelineOperator: "Unrecognized expression '$toHashedIndexKey'", from
	// servers 3.6 and later that lack it, and from the mongo-java-server test stand-in.
	codeInvalidPipelineOperator = 168
	// codeLegacyInvalidOperator: "invalid operator '$toHashedIndexKey'", servers before 3.6.
	codeLegacyInvalidOperator = 15999
	// codeQueryFeatureNotAllowed: the binary knows it but the featureCompatibilityVersion is
	// older than the release that added it.
	codeQueryFeatureNotAllowed = 238
	// codeAPIStrictError: "... is not allowed with 'apiStrict: true' in API Version 1"; the
	// operator is outside the Stable API.
	codeAPIStrictError = 323
)

// IsUnsupported reports whether err is a server refusing the $toHashedIndexKey of ServerStage,
// in which case shard.filter=auto falls back to ClientFilter. Only refusals that name
// $toHashedIndexKey count: an unknown operator in the user's own pipeline fails the same way
// with or without the shard stage, and must surface as it is.
func IsUnsupported(err error) bool {
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code {
	case codeInvalidPipelineOperator, codeLegacyInvalidOperator, codeQueryFeatureNotAllowed, codeAPIStrictError:
		return strings.Contains(ce.Message, "$toHashedIndexKey")
	default:
		return false
	}
}
