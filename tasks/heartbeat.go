package tasks

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/tasks/avrobin"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// The Avro records of Debezium's heartbeat: a key naming the connector's logical server
// (topic.prefix) and a value holding when the heartbeat was written.
const (
	heartbeatKeyName   = "io.debezium.connector.common.ServerNameKey"
	heartbeatValueName = "io.debezium.connector.common.Heartbeat"
	heartbeatKeySchema = `{"type":"record","name":"ServerNameKey","namespace":"io.debezium.connector.common","fields":[{"name":"serverName","type":"string"}]}`
	heartbeatSchema    = `{"type":"record","name":"Heartbeat","namespace":"io.debezium.connector.common","fields":[{"name":"ts_ms","type":"long"}]}`
	// heartbeatConnectSchema is the value's schema in JsonConverter's envelope (json_schema).
	heartbeatConnectSchema = `{"type":"struct","fields":[{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"` + heartbeatValueName + `"}`
)

// heartbeat writes Debezium's heartbeat records to heartbeat.topic every
// heartbeat.interval.ms: key {serverName: topic.prefix}, value {ts_ms}, in the connector's
// key and value formats. Not safe for concurrent use.
type heartbeat struct {
	topic    string
	interval time.Duration
	key      []byte // the same for every heartbeat
	format   config.ValueFormat
	valueID  int // the Avro value schema's id
	last     time.Time
}

// newHeartbeat registers the Avro schemas the connector's formats need, or returns nil when
// the connector has no heartbeat.topic.
func newHeartbeat(ctx context.Context, reg SchemaRegistry, cfg *config.Config) (*heartbeat, error) {
	if cfg.HeartbeatTopic == "" {
		return nil, nil
	}
	h := &heartbeat{topic: cfg.HeartbeatTopic, interval: cfg.HeartbeatInterval, format: cfg.ValueFormat}
	// topic.prefix is a topic name: JSON never escapes its characters.
	switch cfg.KeyFormat {
	case config.KeyJSON:
		h.key = []byte(`{"serverName":"` + cfg.TopicPrefix + `"}`)
	case config.KeyString:
		h.key = []byte(cfg.TopicPrefix)
	default:
		subject := cfg.KeySubjectStrategy.Subject(h.topic, "key", heartbeatKeyName)
		id, err := reg.Register(ctx, subject, heartbeatKeySchema)
		if err != nil {
			return nil, fmt.Errorf("register the heartbeat key schema as %s: %w", subject, err)
		}
		h.key = avrobin.AppendString(registry.AppendWireHeader(nil, id), cfg.TopicPrefix)
	}
	if cfg.ValueFormat == config.ValueAvro {
		subject := cfg.ValueSubjectStrategy.Subject(h.topic, "value", heartbeatValueName)
		var err error
		if h.valueID, err = reg.Register(ctx, subject, heartbeatSchema); err != nil {
			return nil, fmt.Errorf("register the heartbeat value schema as %s: %w", subject, err)
		}
	}
	return h, nil
}

// due reports whether a heartbeat is to be written at now, and if so counts it as written.
func (h *heartbeat) due(now time.Time) bool {
	if h == nil || now.Sub(h.last) < h.interval {
		return false
	}
	h.last = now
	return true
}

// appendValue appends the value of a heartbeat written at now.
func (h *heartbeat) appendValue(dst []byte, now time.Time) []byte {
	ms := now.UnixMilli()
	switch h.format {
	case config.ValueJSON:
		return append(strconv.AppendInt(append(dst, `{"ts_ms":`...), ms, 10), '}')
	case config.ValueJSONSchema:
		dst = append(dst, `{"schema":`+heartbeatConnectSchema+`,"payload":{"ts_ms":`...)
		return append(strconv.AppendInt(dst, ms, 10), "}}"...)
	}
	return avrobin.AppendLong(registry.AppendWireHeader(dst, h.valueID), ms)
}

// writeHeartbeat produces a heartbeat record in group g when one is due.
func (w *kafkaWriter) writeHeartbeat(ctx context.Context, g *ackGroup[checkpoint], now time.Time) error {
	if !w.heartbeat.due(now) {
		return nil
	}
	r := w.record(w.heartbeat.topic)
	r.Key = append(r.Key, w.heartbeat.key...)
	r.Value = w.heartbeat.appendValue(r.Value, now)
	r.Timestamp = now
	if err := w.beforeProduce(ctx); err != nil {
		w.records.Put(r)
		return err
	}
	g.Add()
	w.txn.cl.Produce(ctx, r, g.Promise())
	return nil
}
