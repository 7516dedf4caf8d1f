package config

import (
	"regexp"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// scopeNamespaceField holds "<db>.<collection>" while the scope stages match it; the last
// stage removes it, so events leave the stream as the server wrote them.
const scopeNamespaceField = "__mongorelay_ns"

// ScopeStages are the change stream stages that keep, of a database's (db) or the whole
// deployment's (db "") events, those of the collections the connector captures, matched on
// the server as Includes matches them: admin, config and local and system.* collections
// never, then the database and collection lists (the expressions anchored and
// case-insensitive, as compiled). Events without a collection (dropDatabase, invalidate)
// never match: they give no record.
//
// The collection lists match "<db>.<collection>", which a change event does not hold as one
// field: the first stage computes it, as Debezium's capture.scope pipeline does, since
// $regexMatch needs MongoDB 4.2 where $concat and $regex do not.
func (c *Config) ScopeStages(db string) []bson.D {
	and := bson.A{
		bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "ns.coll", Value: bson.D{{Key: "$regex", Value: `^system\.`}}}}}}},
		bson.D{{Key: "ns.coll", Value: bson.D{{Key: "$exists", Value: true}}}},
	}
	if db == "" {
		and = append(and, bson.D{{Key: "ns.db", Value: bson.D{{Key: "$nin", Value: bson.A{"admin", "config", "local"}}}}})
	}
	and = appendLists(and, "ns.db", c.databaseInclude, c.databaseExclude)
	and = appendLists(and, scopeNamespaceField, c.collectionInclude, c.collectionExclude)
	return []bson.D{
		{{Key: "$addFields", Value: bson.D{{Key: scopeNamespaceField, Value: bson.D{{Key: "$concat", Value: bson.A{"$ns.db", ".", "$ns.coll"}}}}}}},
		{{Key: "$match", Value: bson.D{{Key: "$and", Value: and}}}},
		{{Key: "$unset", Value: scopeNamespaceField}},
	}
}

// appendLists appends to and the conditions on field of an include list (one of its
// expressions matches) and an exclude list (none does).
func appendLists(and bson.A, field string, include, exclude []*regexp.Regexp) bson.A {
	if include != nil {
		var anyOf bson.A
		for _, re := range include {
			anyOf = append(anyOf, bson.D{{Key: field, Value: regexOf(re)}})
		}
		and = append(and, bson.D{{Key: "$or", Value: anyOf}})
	}
	if exclude != nil {
		var none bson.A
		for _, re := range exclude {
			none = append(none, bson.D{{Key: field, Value: regexOf(re)}})
		}
		and = append(and, bson.D{{Key: "$nor", Value: none}})
	}
	return and
}

// regexOf matches a compiled list expression: its String is the anchored, case-insensitive
// form compileList made, which MongoDB's regular expressions read the same.
func regexOf(re *regexp.Regexp) bson.D {
	return bson.D{{Key: "$regex", Value: re.String()}}
}
