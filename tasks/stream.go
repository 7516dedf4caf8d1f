package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/shard"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// streamSource reads a task's shard of its collection's change stream into the writer, each
// batch sealed with its post-batch resume token.
type streamSource struct {
	spec      Spec
	cfg       *config.Config
	mongo     mongoReader
	w         recordWriter
	log       *slog.Logger
	streamKey offsets.Key
	// retire removes the offsets of the shard generations before h once every shard is past
	// them, reporting whether it did; shard 0 calls it while streaming after a handover.
	retire  func(ctx context.Context, h *handover) (bool, error)
	stalls  *stalls
	metrics *taskmetrics.Unit
	// scope filters a scope task's events by collection (scope.go); nil for a collection's task.
	scope *scopeFilter
	// inc copies the collection again while it streams when asked (incremental.go); nil:
	// the task takes no ad-hoc snapshot requests.
	inc *incrementalSnapshot
	// signal records an execute-snapshot signal (signal.go); nil unless the task streams its
	// connector's signal collection.
	signal func(ctx context.Context, collections []string, signal string) error
}

func streamOptions(cfg *config.Config) changestream.Options {
	o := changestream.Options{
		Pipeline:  cfg.Pipeline,
		BatchSize: int32(cfg.MaxBatchSize),
		MaxAwait:  cfg.PollMaxWait,
	}
	switch cfg.CaptureMode {
	case config.CaptureUpdateFull:
		o.FullDocument = options.UpdateLookup
	case config.CaptureWithPreImage:
		o.FullDocumentBeforeChange = options.WhenAvailable
	case config.CaptureUpdateFullWithPreImage:
		o.FullDocument = options.UpdateLookup
		o.FullDocumentBeforeChange = options.WhenAvailable
	}
	return o
}

// open opens the change stream with the shard filter of shard.filter: in the pipeline
// (server), in this process (client, returned as keep), or auto: the server's when it can run
// the stage ($toHashedIndexKey came with MongoDB 5.0), else this process's.
func (s *streamSource) open(ctx context.Context, start changestream.Start) (cs changeStream, keep func(bson.Raw) (bool, error), err error) {
	opts := streamOptions(s.cfg)
	if s.spec.Shards == 1 {
		cs, err = s.mongo.watch(ctx, opts, start)
		return cs, nil, err
	}
	mode := s.cfg.ShardFilter
	if mode != config.ShardFilterClient {
		server := opts
		server.Pipeline = append(append([]bson.D(nil), opts.Pipeline...), shard.ServerStage(s.spec.Shard, s.spec.Shards))
		cs, err = s.mongo.watch(ctx, server, start)
		if err == nil || mode == config.ShardFilterServer {
			return cs, nil, err
		}
		serverErr := err
		// If the stream opens without the stage, the stage is what the server cannot run
		// (an unknown $toHashedIndexKey, or on old servers another operator of it).
		if cs, err = s.mongo.watch(ctx, opts, start); err != nil {
			return nil, nil, err
		}
		s.log.Info("the server cannot filter shards: filtering in this process (shard.filter=auto)",
			"server_error", serverErr.Error(), "unsupported_operator", shard.IsUnsupported(serverErr))
		return cs, shard.ClientFilter(s.spec.Shard, s.spec.Shards), nil
	}
	cs, err = s.mongo.watch(ctx, opts, start)
	return cs, shard.ClientFilter(s.spec.Shard, s.spec.Shards), err
}

// run streams from start until ctx is done or the stream fails. h, when not nil, is the
// handover from the shard generation before: events it delivered are dropped.
func (s *streamSource) run(ctx context.Context, start changestream.Start, h *handover) error {
	s.stalls.begin(waitStreamOpen)
	cs, keep, err := s.open(ctx, start)
	s.stalls.end(waitStreamOpen)
	if err != nil {
		return s.classify(err, start)
	}
	defer func() { _ = cs.Close(context.WithoutCancel(ctx)) }()
	s.metrics.Streaming(time.Now(), true)
	defer func() { s.metrics.Streaming(time.Now(), false) }()
	if s.spec.scoped() {
		s.log.Info("streaming", "scope", s.spec.DB+"."+s.spec.Coll, "resume", start.Position.String())
	} else {
		s.log.Info("streaming", "topic", s.cfg.Topic(s.spec.DB, s.spec.Coll), "resume", start.Position.String())
	}
	last := start.Position
	past := h == nil // past every earlier shard generation's position
	var lastRetire time.Time
	if s.inc != nil {
		if err := s.inc.load(); err != nil {
			return err
		}
	}
	for {
		if err := s.w.err(); err != nil {
			return err
		}
		if s.inc != nil {
			// Between batches: every change read so far is written, so the stream's position
			// is the chunk's low watermark.
			if err := s.inc.open(ctx, time.Now(), s.cfg.MaxBatchSize); err != nil {
				return err
			}
		}
		g := s.w.openGroup()
		now := time.Now()
		// n counts the batch's events that make records, seen those of this shard (records and
		// rejects), filtered the others; sourceMs is when MongoDB made the last record's change.
		n, seen, filtered := 0, 0, 0
		var sourceMs int64
		// The wait for MongoDB ends with the batch's first event: writing to Kafka is not
		// part of it.
		s.stalls.begin(waitStreamRead)
		first := true
		tok, err := cs.NextBatch(ctx, func(raw bson.Raw) error {
			if first {
				s.stalls.end(waitStreamRead)
				first = false
			}
			if keep != nil {
				if mine, err := keep(raw); err != nil || !mine {
					filtered++
					return err
				}
			}
			if !past {
				delivered, nowPast, err := h.delivered(raw)
				if err != nil || delivered {
					filtered++
					return err
				}
				past = nowPast
			}
			ev, err := envelope.Parse(raw)
			if err != nil {
				seen++
				return s.w.reject(ctx, g, raw, &ev, fmt.Errorf("parse change event: %w", err))
			}
			if s.inc != nil {
				if err := s.inc.observe(ctx, s.w, g, &ev, now); err != nil {
					return err
				}
			}
			if s.signal != nil {
				if err := s.readSignal(ctx, &ev); err != nil {
					return err
				}
			}
			if ev.Kind() != envelope.KindRecord {
				filtered++
				s.log.Info("change event without a record", "operationType", string(ev.OperationType))
				return nil
			}
			if s.scope != nil {
				if keep, err := s.scope.keep(&ev); err != nil || !keep {
					filtered++
					return err
				}
			}
			n++
			seen++
			sourceMs = eventTime(&ev, now).UnixMilli()
			return s.w.write(ctx, g, raw, &ev, now)
		})
		s.stalls.end(waitStreamRead)
		s.metrics.Batch(time.Now(), seen, filtered, sourceMs, err == nil && cs.CaughtUp())
		if err != nil {
			g.SealEmpty()
			return s.classify(err, changestream.Start{Position: last})
		}
		if err := s.w.writeHeartbeat(ctx, g, time.Now()); err != nil {
			g.SealEmpty()
			return err
		}
		if tok == nil {
			if err := s.w.seal(ctx, g, checkpoint{}, false, n == 0 || cs.CaughtUp()); err != nil {
				return err
			}
			continue
		}
		v, err := valueAt(tok)
		if err != nil {
			g.SealEmpty()
			return err
		}
		if pos, err := v.Position(); err == nil {
			last = pos
		}
		idle := n == 0
		if s.inc != nil {
			if err := s.inc.passed(ctx, s.w, g, v, cs.CaughtUp(), now); err != nil {
				g.SealEmpty()
				return err
			}
			var moved bool
			v.Incremental, moved = s.inc.state()
			idle = idle && !moved
		}
		if err := s.w.seal(ctx, g, checkpoint{key: s.streamKey, value: v, idle: idle}, true, n == 0 || cs.CaughtUp()); err != nil {
			return err
		}
		if h != nil && s.spec.Shard == 0 && time.Since(lastRetire) >= retirePoll {
			lastRetire = time.Now()
			retired, err := s.retire(ctx, h)
			if err != nil {
				return err
			}
			if retired {
				h = nil
			}
		}
	}
}

// classify turns history loss into the error that says what was lost and how to recover.
func (s *streamSource) classify(err error, at changestream.Start) error {
	if errors.Is(err, changestream.ErrHistoryLost) {
		return &changestream.HistoryLostError{
			Connector: s.cfg.Name,
			Namespace: s.spec.DB + "." + s.spec.Coll,
			Committed: at.Position,
			Err:       err,
		}
	}
	return err
}

// valueAt is the offset value of a resume token document ({_data: ...}).
func valueAt(tok bson.Raw) (*offsets.Value, error) {
	data, ok := tok.Lookup("_data").StringValueOK()
	if !ok {
		return nil, fmt.Errorf("resume token %s has no _data string", tok)
	}
	return offsets.ResumeAt(data)
}

func tokenDoc(data string) bson.Raw {
	doc, _ := bson.Marshal(bson.D{{Key: "_data", Value: data}})
	return doc
}
