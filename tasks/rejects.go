package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
)

// recordOverhead bounds what Kafka adds around a record's key, value and headers (record and
// batch headers, varints), so a record measured below maxRecordBytes fits in a batch of its own.
const recordOverhead = 256

// Dead letter record headers, beside Kafka Connect's own __connect.errors.* names so that
// tools written for Connect's dead letter queues read them too.
const (
	headerErrorClass   = "__connect.errors.exception.class.name"
	headerErrorMessage = "__connect.errors.exception.message"
	headerConnector    = "__connect.errors.connector.name"
	headerTask         = "__connect.errors.task.id"
	headerCollection   = "mongorelay.collection"
	headerResumeToken  = "mongorelay.resume_token"
	headerReason       = "mongorelay.reason"
)

// reject handles a change event or snapshot document that could not become a record, as
// errors.tolerance says: the task fails (none), or the raw event goes to the dead letter topic
// as canonical extended JSON, in the same ack group as the records around it so the offset
// never passes it before Kafka has it (all).
func (w *kafkaWriter) reject(ctx context.Context, g *ackGroup[checkpoint], raw bson.Raw, ev *envelope.Event, cause error) error {
	if w.cfg.ErrorsTolerance != config.ToleranceAll {
		return w.recordError(ev, cause)
	}
	w.metrics.Failed.Add(1)
	w.log.Warn("record skipped (errors.tolerance=all)", "id", ev.ID().String(), "err", cause)
	if w.cfg.DeadLetterTopic == "" {
		return nil
	}
	body, err := bson.MarshalExtJSON(raw, true, false)
	if err != nil {
		body = []byte(strconv.Quote(fmt.Sprintf("unreadable BSON (%v): %x", err, []byte(raw))))
	}
	return w.deadLetter(ctx, g, ev, body, "conversion", "ConversionError", cause.Error())
}

// ErrDocumentRejected is a task's failure on a document that cannot become a record, under
// errors.tolerance=none: running the task again meets the same document; fixing it, or
// tolerating such documents, does not.
var ErrDocumentRejected = errors.New("cannot become a record")

// ErrRecordTooLarge is a task's failure on a record larger than its topic accepts, under
// oversize.handling=fail: running the task again cannot fix it; skipping such records or
// raising the topic's max.message.bytes does.
var ErrRecordTooLarge = errors.New("record too large for its topic")

// oversize handles a record larger than the topic accepts, as oversize.handling says: the task
// fails with the document key (fail), or a reference without the body goes to the dead letter
// topic (skip).
func (w *kafkaWriter) oversize(ctx context.Context, g *ackGroup[checkpoint], rt *route, ev *envelope.Event, size int) error {
	msg := fmt.Sprintf("record of %d bytes for %s exceeds the %d bytes the topic accepts (max.message.bytes)", size, rt.topic, rt.maxRecordBytes+recordOverhead)
	if w.cfg.OversizeHandling != config.OversizeSkip {
		return fmt.Errorf("document %s in %s.%s: %w: %s; set oversize.handling=skip to skip such records (a reference goes to the dead letter topic) or raise the topic's max.message.bytes",
			ev.ID().String(), rt.db, rt.coll, ErrRecordTooLarge, msg)
	}
	w.metrics.Oversize.Add(1)
	w.log.Warn("oversize record skipped (oversize.handling=skip)", "id", ev.ID().String(), "bytes", size)
	if w.cfg.DeadLetterTopic == "" {
		return nil
	}
	ref, _ := json.Marshal(struct {
		Reason      string `json:"reason"`
		Topic       string `json:"topic"`
		DB          string `json:"db"`
		Collection  string `json:"collection"`
		ID          string `json:"id"`
		Op          string `json:"op"`
		Bytes       int    `json:"bytes"`
		Limit       int    `json:"limit"`
		ResumeToken string `json:"resume_token,omitempty"`
	}{"oversize", rt.topic, rt.db, rt.coll, ev.ID().String(), ev.Op.String(), size,
		rt.maxRecordBytes + recordOverhead, string(ev.ResumeToken)})
	return w.deadLetter(ctx, g, ev, ref, "oversize", "RecordTooLargeException", msg)
}

func (w *kafkaWriter) deadLetter(ctx context.Context, g *ackGroup[checkpoint], ev *envelope.Event, value []byte, reason, class, message string) error {
	if err := w.beforeProduce(ctx); err != nil {
		return err
	}
	r := w.record(w.cfg.DeadLetterTopic)
	r.Key = append(r.Key[:0], ev.ID().String()...)
	r.Value = append(r.Value[:0], value...)
	r.Headers = []kgo.RecordHeader{
		{Key: headerErrorClass, Value: []byte(class)},
		{Key: headerErrorMessage, Value: []byte(message)},
		{Key: headerConnector, Value: []byte(w.cfg.Name)},
		{Key: headerTask, Value: []byte(w.spec.Name())},
		{Key: headerCollection, Value: []byte(w.namespaceOf(ev))},
		{Key: headerResumeToken, Value: append([]byte(nil), ev.ResumeToken...)},
		{Key: headerReason, Value: []byte(reason)},
	}
	w.metrics.DeadLettered.Add(1)
	g.Add()
	w.txn.cl.Produce(ctx, r, g.Promise())
	return nil
}
