package tasks

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/envelope"
)

// recordWriter is where the sources (the snapshot copy and the change stream) send their
// events; the Kafka writer is the one. A source opens a group per batch it reads (a change
// stream batch, a snapshot page), writes the batch's events into it, and seals it with the
// checkpoint that resumes after them: the writer commits the checkpoint once every record
// before it is acknowledged.
type recordWriter interface {
	openGroup() *ackGroup[checkpoint]
	// write turns an event into records of group g; one call per event is the whole hot-path
	// cost of the seam.
	write(ctx context.Context, g *ackGroup[checkpoint], raw bson.Raw, ev *envelope.Event, now time.Time) error
	// reject handles an event that cannot become a record, as errors.tolerance says.
	reject(ctx context.Context, g *ackGroup[checkpoint], raw bson.Raw, ev *envelope.Event, cause error) error
	// writeHeartbeat adds heartbeat.topic's record to g when one is due at now.
	writeHeartbeat(ctx context.Context, g *ackGroup[checkpoint], now time.Time) error
	// seal closes g with its checkpoint (hasCP) or without; caughtUp means nothing more is
	// waiting to be read, the moment to commit the transaction.
	seal(ctx context.Context, g *ackGroup[checkpoint], cp checkpoint, hasCP, caughtUp bool) error
	// flush returns once every record written so far is committed and acknowledged and every
	// checkpoint sealed before it committed.
	flush(ctx context.Context) error
	// err is the first produce error: a source stops on it.
	err() error
}
