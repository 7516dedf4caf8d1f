// Package kafkastore keeps a standalone process's schema registry in a
// compacted Kafka topic, so that ids survive restarts and the loss of the
// local disk.
//
// The topic (default mongorelay-schemas) has one partition and
// cleanup.policy=compact; Open creates it so if it is missing and refuses a
// topic that would delete records by age or size, which would let ids start
// again under existing data. Records, in the spirit of Confluent's _schemas
// topic:
//
//	key   {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
//	value {"subject":"s","version":1,"id":7,"schema":"<canonical text>","deleted":false}
//	      null: the version was hard-deleted
//	key   {"keytype":"CONFIG","subject":"s","magic":0}    ("subject":null: the global level)
//	value {"compatibilityLevel":"FULL"}
//	      null: the level was removed
//	key   {"keytype":"MAX_ID","magic":0}
//	value {"id":42}    the highest id ever assigned, written before any hard delete
//	key   {"keytype":"CLUSTER","cluster_id":"c","stamp":"9f2c…","magic":0}
//	value {"cluster_id":"c","stamped_ms":1700000000000}
//	      a stamp: cluster c uses the topic; the first stamp's cluster owns it. Each
//	      stamp written has a key of its own (a random stamp id), so compaction never
//	      drops the first one for a later stamp of the same cluster
//
// Keys are encoded from structs, so one key always has the same bytes:
// compaction merges only identical keys.
//
// One process writes the topic: the standalone worker. Two registries
// writing one topic could give one id to two schemas, so Append checks that
// its records land at the offsets it expects and returns ErrConcurrentWriter
// when they do not. A cluster keeps its registry in Raft instead.
package kafkastore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
	"github.com/mongorelay/mongorelay/registry"
)

// DefaultTopic is the topic used unless Topic says otherwise.
const DefaultTopic = "mongorelay-schemas"

// ErrConcurrentWriter means another process wrote the topic since this
// store last read or wrote it.
var ErrConcurrentWriter = errors.New("another process writes the schemas topic")

type config struct {
	topic       string
	replication int16
	clientOpts  []kgo.Opt
	log         *slog.Logger
	clusterID   string
}

// Opt configures a Store.
type Opt func(*config)

// Topic sets the topic's name. Default "mongorelay-schemas" (the worker's
// schemas.topic).
func Topic(name string) Opt { return func(c *config) { c.topic = name } }

// ReplicationFactor sets the replication factor of the topic when Open
// creates it. Default -1: the broker's default.replication.factor. Use 3 on
// a production cluster whose default is lower.
func ReplicationFactor(n int16) Opt { return func(c *config) { c.replication = n } }

// ClientOpts sets how to reach Kafka: kgo.SeedBrokers, SASL, TLS. Default
// none, which kgo takes as localhost:9092. The store adds its own producer
// settings (acks=all, idempotent writes, partition 0) after these.
func ClientOpts(opts ...kgo.Opt) Opt {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// Logger sets where the store logs. Default slog.Default().
func Logger(l *slog.Logger) Opt { return func(c *config) { c.log = l } }

// ClusterID stamps the topic with the cluster that owns it (the worker's cluster.id): Open
// writes the stamp into a topic that has none, and refuses, with a
// *kafkatopic.OtherClusterError, a topic stamped by another cluster. Default "": no stamp is
// read or written.
func ClusterID(id string) Opt { return func(c *config) { c.clusterID = id } }

// Store is a registry.Store in a compacted Kafka topic.
type Store struct {
	cfg config
	cl  *kgo.Client

	mu sync.Mutex // serialises Append and Replay, which both move next
	// next is the offset the next record written should get; -1 when
	// unknown (before Replay, after a failed write).
	next int64
}

// Open connects to Kafka and makes sure the topic exists and is compacted.
// Call Close when done.
func Open(ctx context.Context, opts ...Opt) (*Store, error) {
	cfg := config{topic: DefaultTopic, replication: -1, log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	cl, err := kgo.NewClient(append(cfg.clientOpts,
		kgo.DefaultProduceTopic(cfg.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("schemas topic %s: new Kafka client: %w", cfg.topic, err)
	}
	s := &Store{cfg: cfg, cl: cl, next: -1}
	if err := s.ensureTopic(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	if cfg.clusterID != "" {
		st := kafkatopic.Stamp{Topic: cfg.topic, ConfigKey: "schemas.topic", Key: StampKey, ClusterOf: StampCluster}
		if err := kafkatopic.Claim(ctx, cfg.clientOpts, st, cfg.clusterID); err != nil {
			cl.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close releases the Kafka client.
func (s *Store) Close() { s.cl.Close() }

func (s *Store) ensureTopic(ctx context.Context) error {
	adm := kadm.NewClient(s.cl)
	topic := s.cfg.topic
	_, err := adm.CreateTopic(ctx, 1, s.cfg.replication, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	switch {
	case err == nil:
		s.cfg.log.Info("created schemas topic", "topic", topic)
		if err := kafkatopic.AwaitLeaders(ctx, s.cl, topic); err != nil {
			return err
		}
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		return fmt.Errorf("create schemas topic %s: %w", topic, err)
	}

	rc, err := kafkatopic.DescribeConfigs(ctx, adm, topic)
	if err != nil {
		return fmt.Errorf("describe schemas topic %s: %w", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key != "cleanup.policy" {
			continue
		}
		if policy := c.MaybeValue(); policy != "compact" {
			return fmt.Errorf("schemas topic %s has cleanup.policy=%s: it must be compact, or old schemas would be deleted and their ids reused", topic, policy)
		}
	}

	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("list schemas topic %s: %w", topic, err)
	}
	if d, ok := details[topic]; ok && d.Err == nil && len(d.Partitions) != 1 {
		return fmt.Errorf("schemas topic %s has %d partitions: it must have 1, for one order of changes", topic, len(d.Partitions))
	}
	return nil
}

// Append writes changes to the topic and returns once every one is
// acknowledged by all in-sync replicas.
func (s *Store) Append(ctx context.Context, changes ...registry.Change) error {
	if len(changes) == 0 {
		return nil
	}
	rs := make([]*kgo.Record, len(changes))
	for i, c := range changes {
		k, v, err := encode(c)
		if err != nil {
			return err
		}
		rs[i] = &kgo.Record{Key: k, Value: v}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	expected := s.next
	if err := s.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		s.next = -1
		return fmt.Errorf("produce to schemas topic %s: %w", s.cfg.topic, err)
	}
	s.next = rs[len(rs)-1].Offset + 1
	if expected < 0 {
		return nil
	}
	for i, r := range rs {
		if r.Offset != expected+int64(i) {
			s.cfg.log.Error("another process writes the schemas topic: run one standalone process per topic",
				"topic", s.cfg.topic, "offset", r.Offset, "expected", expected+int64(i))
			return fmt.Errorf("%w: %s offset %d, expected %d", ErrConcurrentWriter, s.cfg.topic, r.Offset, expected+int64(i))
		}
	}
	return nil
}

// Replay reads the topic from its start to the end it had when called.
func (s *Store) Replay(ctx context.Context, apply func(registry.Change) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	start, end, err := s.bounds(ctx)
	if err != nil {
		return err
	}
	if start < end {
		if err := s.consume(ctx, start, end, apply); err != nil {
			return err
		}
	}
	s.next = end
	return nil
}

// bounds returns the topic's log start and end offsets, waiting out the
// moments after creation when the partition has no leader yet.
func (s *Store) bounds(ctx context.Context) (int64, int64, error) {
	adm := kadm.NewClient(s.cl)
	for {
		starts, err := adm.ListStartOffsets(ctx, s.cfg.topic)
		if err == nil {
			var ends kadm.ListedOffsets
			if ends, err = adm.ListEndOffsets(ctx, s.cfg.topic); err == nil {
				st, ok1 := starts.Lookup(s.cfg.topic, 0)
				en, ok2 := ends.Lookup(s.cfg.topic, 0)
				switch {
				case !ok1 || !ok2:
					err = kerr.UnknownTopicOrPartition
				case st.Err != nil:
					err = st.Err
				case en.Err != nil:
					err = en.Err
				default:
					return st.Offset, en.Offset, nil
				}
			}
		}
		if !kerr.IsRetriable(err) {
			return 0, 0, fmt.Errorf("list offsets of schemas topic %s: %w", s.cfg.topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("list offsets of schemas topic %s: %w (last error: %v)", s.cfg.topic, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Store) consume(ctx context.Context, start, end int64, apply func(registry.Change) error) error {
	cl, err := kgo.NewClient(append(s.cfg.clientOpts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.topic: {0: kgo.NewOffset().At(start)}}),
	)...)
	if err != nil {
		return fmt.Errorf("read schemas topic %s: new Kafka client: %w", s.cfg.topic, err)
	}
	defer cl.Close()
	next := start
	for next < end {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read schemas topic %s at offset %d of %d: %w", s.cfg.topic, next, end, err)
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("read schemas topic %s at offset %d: %w", s.cfg.topic, next, err)
		}
		for it := fs.RecordIter(); !it.Done() && next < end; {
			r := it.Next()
			if r.Offset >= end {
				break
			}
			c, ok, err := s.decode(r)
			if err != nil {
				return fmt.Errorf("schemas topic %s offset %d: %w", s.cfg.topic, r.Offset, err)
			}
			if ok {
				if err := apply(c); err != nil {
					return fmt.Errorf("schemas topic %s offset %d: %w", s.cfg.topic, r.Offset, err)
				}
			}
			next = r.Offset + 1
		}
	}
	return nil
}

const (
	keySchema  = "SCHEMA"
	keyConfig  = "CONFIG"
	keyMaxID   = "MAX_ID"
	keyCluster = "CLUSTER"
)

// stampKey is a stamp's key: no registry change has a cluster_id.
type stampKey struct {
	KeyType   string `json:"keytype"`
	ClusterID string `json:"cluster_id"`
	Stamp     string `json:"stamp"`
	Magic     int    `json:"magic"`
}

// StampKey is the key of a stamp of cluster id in the schemas topic; stamp tells one stamp
// from another (kafkatopic.Claim gives each a random one).
func StampKey(clusterID, stamp string) []byte {
	b, _ := json.Marshal(stampKey{KeyType: keyCluster, ClusterID: clusterID, Stamp: stamp})
	return b
}

// StampCluster returns the cluster id of a stamp key; ok is false for any other key.
func StampCluster(key []byte) (clusterID string, ok bool) {
	var k stampKey
	if !bytes.HasPrefix(key, []byte(`{"keytype":"CLUSTER",`)) || json.Unmarshal(key, &k) != nil ||
		!bytes.Equal(StampKey(k.ClusterID, k.Stamp), key) {
		return "", false
	}
	return k.ClusterID, true
}

// The record formats. Field order is the JSON order: keep it.
type (
	schemaKey struct {
		KeyType string `json:"keytype"`
		Subject string `json:"subject"`
		Version int    `json:"version"`
		Magic   int    `json:"magic"`
	}
	configKey struct {
		KeyType string  `json:"keytype"`
		Subject *string `json:"subject"` // nil: the global level
		Magic   int     `json:"magic"`
	}
	maxIDKey struct {
		KeyType string `json:"keytype"`
		Magic   int    `json:"magic"`
	}
	anyKey struct {
		KeyType string  `json:"keytype"`
		Subject *string `json:"subject"`
		Version int     `json:"version"`
		Magic   int     `json:"magic"`
	}
	schemaValue struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
		ID      int    `json:"id"`
		Schema  string `json:"schema"`
		Deleted bool   `json:"deleted"`
	}
	configValue struct {
		CompatibilityLevel registry.Compatibility `json:"compatibilityLevel"`
	}
	maxIDValue struct {
		ID int `json:"id"`
	}
)

// magic is each key type's format version.
var magic = map[string]int{keySchema: 1, keyConfig: 0, keyMaxID: 0}

func encode(c registry.Change) (key, value []byte, err error) {
	var k, v any
	switch c.Kind {
	case registry.ChangeVersion:
		k = schemaKey{KeyType: keySchema, Subject: c.Subject, Version: c.Version, Magic: magic[keySchema]}
		v = schemaValue{Subject: c.Subject, Version: c.Version, ID: c.ID, Schema: c.Schema, Deleted: c.Deleted}
	case registry.ChangeConfig:
		ck := configKey{KeyType: keyConfig, Magic: magic[keyConfig]}
		if c.Subject != "" {
			ck.Subject = &c.Subject
		}
		k = ck
		v = configValue{CompatibilityLevel: c.Level}
	case registry.ChangeMaxID:
		k = maxIDKey{KeyType: keyMaxID, Magic: magic[keyMaxID]}
		v = maxIDValue{ID: c.ID}
	default:
		return nil, nil, fmt.Errorf("encode schema registry change: unknown kind %d", c.Kind)
	}
	if key, err = json.Marshal(k); err != nil {
		return nil, nil, fmt.Errorf("encode schema registry key: %w", err)
	}
	if c.Remove {
		return key, nil, nil
	}
	if value, err = json.Marshal(v); err != nil {
		return nil, nil, fmt.Errorf("encode schema registry value: %w", err)
	}
	return key, value, nil
}

// decode turns a record into a change; ok is false for a record to skip.
func (s *Store) decode(r *kgo.Record) (c registry.Change, ok bool, err error) {
	if _, stamp := StampCluster(r.Key); stamp {
		return c, false, nil
	}
	var k anyKey
	if err := json.Unmarshal(r.Key, &k); err != nil {
		return c, false, fmt.Errorf("decode key %q: %w", r.Key, err)
	}
	want, known := magic[k.KeyType]
	if !known {
		s.cfg.log.Warn("skipping a record of unknown type in the schemas topic", "topic", s.cfg.topic, "offset", r.Offset, "key", string(r.Key))
		return c, false, nil
	}
	if k.Magic != want {
		return c, false, fmt.Errorf("key %s: format %d, this version reads %d", r.Key, k.Magic, want)
	}
	c.Remove = r.Value == nil
	switch k.KeyType {
	case keySchema:
		if k.Subject == nil || k.Version < 1 {
			return c, false, fmt.Errorf("key %s: no subject or version", r.Key)
		}
		c.Kind, c.Subject, c.Version = registry.ChangeVersion, *k.Subject, k.Version
		if !c.Remove {
			var v schemaValue
			if err := json.Unmarshal(r.Value, &v); err != nil {
				return c, false, fmt.Errorf("decode value of %s: %w", r.Key, err)
			}
			c.ID, c.Schema, c.Deleted = v.ID, v.Schema, v.Deleted
		}
	case keyConfig:
		c.Kind = registry.ChangeConfig
		if k.Subject != nil {
			c.Subject = *k.Subject
		}
		if !c.Remove {
			var v configValue
			if err := json.Unmarshal(r.Value, &v); err != nil {
				return c, false, fmt.Errorf("decode value of %s: %w", r.Key, err)
			}
			if c.Level, err = registry.ParseCompatibility(string(v.CompatibilityLevel)); err != nil {
				return c, false, fmt.Errorf("value of %s: %w", r.Key, err)
			}
		}
	case keyMaxID:
		if c.Remove {
			return c, false, nil
		}
		var v maxIDValue
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return c, false, fmt.Errorf("decode value of %s: %w", r.Key, err)
		}
		c.Kind, c.ID = registry.ChangeMaxID, v.ID
	}
	return c, true, nil
}
