// Package offsets keeps where every task has got to in a compacted Kafka
// topic, one record per task key, the latest value winning.
package offsets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Key names one offset: a shard's stream position, one range of a
// collection's snapshot, or a sink's topic partition. Its encoding is exact
// bytes (see Bytes), because compaction only merges records whose keys are
// byte-for-byte equal.
type Key struct {
	Connector string
	DB        string
	Coll      string
	// Snapshot is false for a shard's stream offset ("shard":"i-of-n") and
	// true for a snapshot range ("snapshot":"r-of-m").
	Snapshot bool
	// Index is i (or r), counted from 0; Count is n (or m).
	Index, Count int
	// KafkaTopic and KafkaPartition name a sink's topic partition, Kafka
	// Connect's sink offset key; the other fields are then zero.
	KafkaTopic     string
	KafkaPartition int32
}

// PartitionKey is the key of a sink's topic partition.
func PartitionKey(connector, topic string, partition int32) Key {
	return Key{Connector: connector, KafkaTopic: topic, KafkaPartition: partition}
}

// ShardKey is the key of shard i of n of a collection's stream.
func ShardKey(connector, db, coll string, i, n int) Key {
	return Key{Connector: connector, DB: db, Coll: coll, Index: i, Count: n}
}

// SnapshotKey is the key of range r of m of a collection's snapshot.
func SnapshotKey(connector, db, coll string, r, m int) Key {
	return Key{Connector: connector, DB: db, Coll: coll, Snapshot: true, Index: r, Count: m}
}

// Bytes encodes k as JSON with no spaces, fields in this order:
//
//	["<connector>",{"db":"<db>","coll":"<coll>","shard":"<i>-of-<n>"}]
//	["<connector>",{"db":"<db>","coll":"<coll>","snapshot":"<r>-of-<m>"}]
//	["<connector>",{"kafka_topic":"<topic>","kafka_partition":<partition>}]
//
// Strings are escaped exactly as encoding/json does with HTML escaping off:
// `"` and `\` with a backslash, \b \f \n \r \t by name, other control
// characters as \u00xx, U+2028 and U+2029 as \u2028 and \u2029, invalid
// UTF-8 as \ufffd; everything else (including non-ASCII) as is. The encoding
// is written out here rather than left to a library so that it can never
// change under a compacted topic.
func (k Key) Bytes() []byte {
	b := make([]byte, 0, 48+len(k.Connector)+len(k.DB)+len(k.Coll))
	b = append(b, '[')
	b = appendString(b, k.Connector)
	if k.KafkaTopic != "" {
		b = append(b, `,{"kafka_topic":`...)
		b = appendString(b, k.KafkaTopic)
		b = append(b, `,"kafka_partition":`...)
		b = strconv.AppendInt(b, int64(k.KafkaPartition), 10)
		return append(b, `}]`...)
	}
	b = append(b, `,{"db":`...)
	b = appendString(b, k.DB)
	b = append(b, `,"coll":`...)
	b = appendString(b, k.Coll)
	if k.Snapshot {
		b = append(b, `,"snapshot":"`...)
	} else {
		b = append(b, `,"shard":"`...)
	}
	b = strconv.AppendInt(b, int64(k.Index), 10)
	b = append(b, "-of-"...)
	b = strconv.AppendInt(b, int64(k.Count), 10)
	return append(b, `"}]`...)
}

// String returns the encoded key.
func (k Key) String() string { return string(k.Bytes()) }

// ParseKey decodes a key written by Bytes. Anything that does not re-encode
// to the same bytes is rejected: a record whose key differs by a space would
// never be compacted with ours, so reading it as ours would be a lie.
func ParseKey(b []byte) (Key, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return Key{}, fmt.Errorf("offset key %q: %w", b, err)
	}
	if len(parts) != 2 {
		return Key{}, fmt.Errorf("offset key %q: want [connector, {...}], got %d elements", b, len(parts))
	}
	var k Key
	if err := json.Unmarshal(parts[0], &k.Connector); err != nil {
		return Key{}, fmt.Errorf("offset key %q: connector: %w", b, err)
	}
	var fields struct {
		DB             string  `json:"db"`
		Coll           string  `json:"coll"`
		Shard          *string `json:"shard"`
		Snapshot       *string `json:"snapshot"`
		KafkaTopic     *string `json:"kafka_topic"`
		KafkaPartition *int32  `json:"kafka_partition"`
	}
	dec := json.NewDecoder(bytes.NewReader(parts[1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fields); err != nil {
		return Key{}, fmt.Errorf("offset key %q: %w", b, err)
	}
	if fields.KafkaTopic != nil || fields.KafkaPartition != nil {
		if fields.KafkaTopic == nil || fields.KafkaPartition == nil || *fields.KafkaTopic == "" {
			return Key{}, fmt.Errorf("offset key %q: want both kafka_topic and kafka_partition", b)
		}
		k.KafkaTopic, k.KafkaPartition = *fields.KafkaTopic, *fields.KafkaPartition
		if !bytes.Equal(k.Bytes(), b) {
			return Key{}, fmt.Errorf("offset key %q is not in canonical form (want %s)", b, k.Bytes())
		}
		return k, nil
	}
	k.DB, k.Coll = fields.DB, fields.Coll
	slice := fields.Shard
	if fields.Snapshot != nil {
		k.Snapshot, slice = true, fields.Snapshot
	}
	if slice == nil || (fields.Shard != nil && fields.Snapshot != nil) {
		return Key{}, fmt.Errorf("offset key %q: want exactly one of shard and snapshot", b)
	}
	i, n, ok := strings.Cut(*slice, "-of-")
	var err1, err2 error
	k.Index, err1 = strconv.Atoi(i)
	k.Count, err2 = strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil {
		return Key{}, fmt.Errorf("offset key %q: %q is not <i>-of-<n>", b, *slice)
	}
	if !bytes.Equal(k.Bytes(), b) {
		return Key{}, fmt.Errorf("offset key %q is not in canonical form (want %s)", b, k.Bytes())
	}
	return k, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as Bytes documents.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
