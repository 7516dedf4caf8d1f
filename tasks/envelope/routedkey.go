package envelope

import "github.com/mongorelay/mongorelay/tasks/avrobin"

// CollectionField is the key field that names a routed record's collection, by its own topic
// <topic.prefix>.<db>.<collection>: the field and value Debezium's topic router
// (ByLogicalTableRouter, key.enforce.uniqueness) adds to the key of a record it moves to a
// shared topic, so that documents of two collections with equal _ids keep distinct keys and
// compaction never merges them.
const CollectionField = "__dbz__physicalTableIdentifier"

// RoutedKeySchema returns the key schema of a topic that topic.namespace.map routes
// collections to: {id: string, __dbz__physicalTableIdentifier: string}, the field appended
// after id as Debezium's router appends it.
func RoutedKeySchema(n Names) string {
	return `{"type":"record","name":"` + n.Key + `","fields":[{"name":"id","type":"string"},{"name":"` + CollectionField + `","type":"string"}]}`
}

// AppendRoutedKey appends the Avro key record of RoutedKeySchema: ev's key, then
// collection, the collection's own topic.
func (e *Event) AppendRoutedKey(dst []byte, collection string) ([]byte, error) {
	dst, err := e.AppendKey(dst)
	if err != nil {
		return dst, err
	}
	return avrobin.AppendString(dst, collection), nil
}

// AppendRoutedJSONKey appends the JSON key of a routed record (key.format=json):
// {"id": string, "__dbz__physicalTableIdentifier": collection}. collection is a topic name,
// whose characters JSON never escapes.
func (e *Event) AppendRoutedJSONKey(dst []byte, collection string) ([]byte, error) {
	dst, err := e.AppendJSONKey(dst)
	if err != nil {
		return dst, err
	}
	dst = append(dst[:len(dst)-1], `,"`+CollectionField+`":"`...)
	return append(append(dst, collection...), `"}`...), nil
}
