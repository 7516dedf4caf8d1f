// Package changestream reads one MongoDB change stream (a collection's, a database's or the
// deployment's) in server batches, from a committed resume point, putting events the server
// split (over 16 MB) back together, and classifies the server's errors into conditions a task
// acts on.
package changestream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/tasks/prefetch"
	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

// Options shape the stream; they come from the connector config.
type Options struct {
	// Pipeline holds the user's stages ($match, $project) and, later, the shard filter.
	Pipeline []bson.D
	// FullDocument is sent as the change stream's fullDocument option ("" leaves it out).
	FullDocument options.FullDocument
	// FullDocumentBeforeChange asks for pre-images ("" leaves it out).
	FullDocumentBeforeChange options.FullDocument
	// BatchSize caps the events per server batch (max.batch.size).
	BatchSize int32
	// MaxAwait is how long the server holds an empty getMore (poll.max.wait.ms).
	MaxAwait time.Duration
	// SplitLargeEvents ends the pipeline with $changeStreamSplitLargeEvent, so that an event
	// over 16 MB comes in fragments, which the stream puts back together, rather than failing
	// the stream. Only for servers that have the stage (ServerSplitsLargeEvents).
	SplitLargeEvents bool
}

// Start says where a stream begins. The zero value starts now.
type Start struct {
	// ResumeToken is the committed token ({_data: ...}); the stream resumes after it.
	ResumeToken bson.Raw
	// Position is the committed token's decoded position, used when the server no longer
	// knows the token (error 280): the stream then restarts at its cluster time and drops
	// every event at or before it.
	Position resumetoken.Position
	// AtOperationTime starts at a cluster time (inclusive) when there is no token.
	AtOperationTime *bson.Timestamp
}

// Stream is an open change stream. It is not safe for concurrent use.
type Stream struct {
	cs        *mongo.ChangeStream
	batchSize int
	// skipThrough, when set, drops events at or before this position: after a fallback from
	// an unknown token to its cluster time, those events were already delivered.
	skipThrough *resumetoken.Position
	// ahead reads the next server batch while the caller handles the current one; it starts
	// with the first NextBatch and owns cs from then on.
	ahead    *prefetch.Reader[bson.Raw]
	lastFull bool
	// split holds the fragments of a split event until its last one comes; only a stream that
	// asked for split events (splits) looks for fragments.
	split  fragments
	splits bool
}

// Watcher is what a change stream watches: a *mongo.Collection, a *mongo.Database (every
// collection of it) or a *mongo.Client (the whole deployment).
type Watcher interface {
	Watch(ctx context.Context, pipeline any, opts ...options.Lister[options.ChangeStreamOptions]) (*mongo.ChangeStream, error)
}

// Open opens the change stream of w, named ns in errors, at start.
func Open(ctx context.Context, w Watcher, ns string, opts Options, start Start) (*Stream, error) {
	pipeline := opts.pipeline()
	csOpts := baseOptions(opts)
	switch {
	case len(start.ResumeToken) > 0:
		csOpts.SetResumeAfter(start.ResumeToken)
	case start.AtOperationTime != nil:
		csOpts.SetStartAtOperationTime(start.AtOperationTime)
	}
	cs, err := w.Watch(ctx, pipeline, csOpts)
	if err == nil {
		return &Stream{cs: cs, batchSize: int(opts.BatchSize), splits: opts.SplitLargeEvents}, nil
	}
	err = Classify(err)
	if len(start.ResumeToken) == 0 || !errors.Is(err, ErrResumeTokenNotFound) {
		return nil, fmt.Errorf("open change stream on %s: %w", ns, err)
	}
	// DESIGN.md 5: error 280 is not loss (a pipeline edit changes which events exist, so the
	// token may not be found); the history is still there from the token's cluster time on.
	at := start.Position.StartAtOperationTime()
	cs, err = w.Watch(ctx, pipeline, baseOptions(opts).SetStartAtOperationTime(&at))
	if err != nil {
		return nil, fmt.Errorf("reopen change stream on %s at %v after its resume token was not found: %w",
			ns, at, Classify(err))
	}
	pos := start.Position
	return &Stream{cs: cs, batchSize: int(opts.BatchSize), splits: opts.SplitLargeEvents, skipThrough: &pos}, nil
}

// pipeline is the stages sent after $changeStream: the given ones, then the split stage, which
// must come last.
func (o Options) pipeline() []bson.D {
	if !o.SplitLargeEvents {
		return o.Pipeline
	}
	return append(append([]bson.D(nil), o.Pipeline...), splitStage())
}

func baseOptions(opts Options) *options.ChangeStreamOptionsBuilder {
	o := options.ChangeStream()
	if opts.FullDocument != "" {
		o.SetFullDocument(opts.FullDocument)
	}
	if opts.FullDocumentBeforeChange != "" {
		o.SetFullDocumentBeforeChange(opts.FullDocumentBeforeChange)
	}
	if opts.BatchSize > 0 {
		o.SetBatchSize(opts.BatchSize)
	}
	if opts.MaxAwait > 0 {
		o.SetMaxAwaitTime(opts.MaxAwait)
	}
	return o
}

// NextBatch passes each event of the next server batches to fn, in order, and returns the
// token to commit once those events are delivered: the post-batch resume token, which moves on
// even when a batch is empty, so an idle stream keeps a fresh position. The event bytes are
// only valid during fn. It returns (nil, nil) when the server had nothing new and no new token.
//
// A split event reaches fn once, reassembled, with its last fragment. The token returned never
// points inside a split event: when a batch ends between two fragments of one event, it is the
// token of the last whole event delivered before them (or nil if there is none), so that a
// task restarted from a committed token reads every fragment of the event again.
//
// The next batch is read from the server while fn runs. Small batches already read are handled
// in the same call, so that the caller commits once for all of them: a stream whose writers are
// slower than its reader yields many small batches, each worth less than a commit.
func (s *Stream) NextBatch(ctx context.Context, fn func(event bson.Raw) error) (bson.Raw, error) {
	if s.ahead == nil {
		// The reader's context is not ctx: a caller may pass a shorter-lived one per call.
		s.ahead = prefetch.Start(context.WithoutCancel(ctx), 1, s.fill)
	}
	// The batches joined in one call hold one server batch's worth of events at most, or the
	// caller would never get to commit while small batches keep arriving.
	limit := s.batchSize
	if limit <= 0 {
		limit = defaultJoinLimit
	}
	var tok bson.Raw
	for n := 0; ; {
		b, err := s.ahead.Next(ctx)
		if err != nil {
			return nil, err
		}
		s.lastFull = s.batchSize > 0 && b.Len() >= s.batchSize
		var whole bson.Raw // the last whole event delivered from b
		for i := range b.Len() {
			ev := b.Doc(i)
			var err error
			if s.splits {
				ev, err = s.split.add(ev)
			}
			if err == nil && ev != nil {
				whole = ev
				err = fn(ev)
			}
			if err != nil {
				s.ahead.Release(b)
				return nil, err
			}
		}
		n += b.Len()
		switch {
		case !s.split.pending():
			if b.Meta != nil {
				tok = b.Meta
			}
		case whole != nil:
			id, err := whole.LookupErr("_id")
			if err != nil {
				s.ahead.Release(b)
				return nil, fmt.Errorf("change event has no _id resume token: %w", err)
			}
			tok = append(bson.Raw(nil), id.Value...)
		}
		s.ahead.Release(b)
		if s.lastFull || n >= limit || !s.ahead.Waiting() {
			return tok, nil
		}
	}
}

// defaultJoinLimit bounds the events of the small batches NextBatch joins when the stream has
// no batch size.
const defaultJoinLimit = 1024

// CaughtUp reports whether the last batch reached the end of the stream as the server had it
// then (it was not full): the moment to commit what is pending rather than wait for more.
func (s *Stream) CaughtUp() bool { return !s.lastFull }

// fill reads one server batch into b; it runs in the prefetch goroutine.
func (s *Stream) fill(ctx context.Context, b *prefetch.Batch[bson.Raw]) (bool, error) {
	for s.cs.TryNext(ctx) {
		ev := s.cs.Current
		if s.skipThrough != nil {
			skip, err := s.atOrBefore(ev)
			if err != nil {
				return false, err
			}
			if skip {
				if s.cs.RemainingBatchLength() == 0 {
					break
				}
				continue
			}
			s.skipThrough = nil // positions only grow: nothing later needs the check
		}
		b.Add(ev)
		if s.cs.RemainingBatchLength() == 0 {
			break
		}
	}
	if err := s.cs.Err(); err != nil {
		return false, fmt.Errorf("read change stream: %w", Classify(err))
	}
	if tok := s.cs.ResumeToken(); tok != nil {
		b.Meta = append(bson.Raw(nil), tok...)
	}
	return false, nil
}

func (s *Stream) atOrBefore(ev bson.Raw) (bool, error) {
	data, ok := ev.Lookup("_id", "_data").StringValueOK()
	if !ok {
		return false, errors.New("change event has no _id._data resume token")
	}
	pos, err := resumetoken.Decode(data)
	if err != nil {
		return false, fmt.Errorf("decode change event token: %w", err)
	}
	return resumetoken.Compare(pos, *s.skipThrough) <= 0, nil
}

// ResumeToken is the stream's current resume token: right after Open, the server's
// post-batch resume token for the present, which marks where a snapshot starts. It may only be
// called before the first NextBatch, which hands the cursor to the prefetch goroutine.
func (s *Stream) ResumeToken() bson.Raw {
	tok := s.cs.ResumeToken()
	if tok == nil {
		return nil
	}
	return append(bson.Raw(nil), tok...)
}

// Close stops the read-ahead and releases the server cursor.
func (s *Stream) Close(ctx context.Context) error {
	if s.ahead != nil {
		s.ahead.Stop()
	}
	return s.cs.Close(ctx)
}
