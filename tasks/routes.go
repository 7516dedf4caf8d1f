package tasks

import (
	"context"
	"fmt"

	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// route is where one collection's records go: its topic, with its encoder (schemas, formats,
// output shape and routed keys, as for a task of that collection alone) and its size limit.
type route struct {
	db, coll string
	topic    string
	enc      *recordEncoder
	// maxRecordBytes is the largest key+value+headers that fits the topic, overhead deducted.
	maxRecordBytes int
}

// routes are a scope task's routes, by database, then collection: two levels, so that the
// lookup of each event's route converts its namespace's bytes without allocating.
type routes struct {
	byNS map[string]map[string]*route
	// createTopic creates a topic when missing and returns its max.message.bytes (0: Kafka's
	// default), before a scope task's first record to it (Deps.CreateTopic).
	createTopic func(ctx context.Context, topic string) (int, error)
}

// scoped reports whether the spec is a scope task's: one stream for a database (Coll "*") or
// the deployment (DB and Coll "*"), whose events fan out to their collections' topics.
func (s Spec) scoped() bool { return s.Coll == taskid.AllCollections }

// newRoute prepares collection coll of db's route: its encoder registers the key schema and
// reads the latest value schema.
func (w *kafkaWriter) newRoute(ctx context.Context, db, coll string, topicMaxBytes int) (*route, error) {
	w.stalls.begin(waitRegistry)
	enc, err := newRecordEncoder(ctx, w.reg, w.cfg, db, coll)
	w.stalls.end(waitRegistry)
	if err != nil {
		return nil, err
	}
	enc.evolutions, enc.stalls = w.evolutions, w.stalls
	maxBytes := min(topicMaxBytes, defaultMaxMessageBytes)
	if maxBytes <= 0 {
		maxBytes = defaultMaxMessageBytes
	}
	return &route{db: db, coll: coll, topic: w.cfg.Topic(db, coll), enc: enc, maxRecordBytes: maxBytes - recordOverhead}, nil
}

// routeOf returns the route of ev's collection; a scope task makes it at the collection's
// first event, creating its topic when missing.
func (w *kafkaWriter) routeOf(ctx context.Context, ev *envelope.Event) (*route, error) {
	if w.single != nil {
		return w.single, nil
	}
	if rt, ok := w.routes.byNS[string(ev.DB)][string(ev.Collection)]; ok {
		return rt, nil
	}
	db, coll := string(ev.DB), string(ev.Collection)
	if db == "" || coll == "" {
		return nil, fmt.Errorf("route a change of %s: the event names no collection", w.spec.Name())
	}
	topic := w.cfg.Topic(db, coll)
	if w.routes.createTopic == nil {
		return nil, fmt.Errorf("route a change of %s.%s: the task cannot create topic %s", db, coll, topic)
	}
	maxBytes, err := w.routes.createTopic(ctx, topic)
	if err != nil {
		return nil, err
	}
	rt, err := w.newRoute(ctx, db, coll, maxBytes)
	if err != nil {
		return nil, err
	}
	if w.routes.byNS[db] == nil {
		w.routes.byNS[db] = map[string]*route{}
	}
	w.routes.byNS[db][coll] = rt
	w.log.Info("writing a collection's changes", "ns", db+"."+coll, "topic", topic)
	return rt, nil
}

// namespaceOf names ev's collection in errors and dead letter headers: the event's own, or
// the task's collection when the event does not say (a snapshot read names it too).
func (w *kafkaWriter) namespaceOf(ev *envelope.Event) string {
	if len(ev.DB) > 0 && len(ev.Collection) > 0 {
		return string(ev.DB) + "." + string(ev.Collection)
	}
	return w.spec.DB + "." + w.spec.Coll
}
