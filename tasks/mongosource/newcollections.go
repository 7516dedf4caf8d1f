package mongosource

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// A collection that appears while a connector runs is streamed from its first operation
// (DESIGN.md 16), not copied: copying would fold every insert, update and delete made before
// its tasks start into one read per surviving document. The leader lists a connector's
// collections every few seconds (Expand); each listing remembers the cluster time read just
// before it. A collection in a listing that was absent from the one before it was created
// after that earlier listing's time, so its shards are given that time as their stream
// position before their tasks exist: the tasks then stream every operation on it, from its
// creation on, in order.
//
// The listings are kept in memory on the node that lists. The first listing after a
// connector is created, after its config changes, or on a new leader, has nothing before it:
// the collections it finds are treated as they always were (snapshot.mode says whether they
// are copied), and only later listings find new ones.

// listing is one listing of a connector's collections.
type listing struct {
	config [sha256.Size]byte // of the connector's config: a new config lists afresh
	at     bson.Timestamp    // a cluster time read before listing
	colls  map[namespace]bool
}

// listings holds the last listing of every connector listed on this node.
type listings struct {
	mu   sync.Mutex
	last map[string]listing
}

func newListings() *listings { return &listings{last: map[string]listing{}} }

// previous returns connector's last listing, if it was made with the same config.
func (l *listings) previous(connector string, config [sha256.Size]byte) (listing, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, ok := l.last[connector]
	return prev, ok && prev.config == config
}

func (l *listings) record(connector string, li listing) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last[connector] = li
}

// configFingerprint identifies a connector's config.
func configFingerprint(raw map[string]string) [sha256.Size]byte {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		fmt.Fprintf(h, "%q=%q\n", k, raw[k])
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// operationTime reads the deployment's cluster time: the operationTime of a ping, which a
// replica set member (and a sharded cluster's router) puts in every answer.
func operationTime(ctx context.Context, cl *mongo.Client) (bson.Timestamp, error) {
	raw, err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Raw()
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("read the cluster time: %w", err)
	}
	v, err := raw.LookupErr("operationTime")
	if err != nil {
		return bson.Timestamp{}, errors.New("read the cluster time: the ping's answer has no operationTime (change streams need a replica set)")
	}
	t, i, ok := v.TimestampOK()
	if !ok || t == 0 {
		return bson.Timestamp{}, fmt.Errorf("read the cluster time: operationTime is %s, not a timestamp", v)
	}
	return bson.Timestamp{T: t, I: i}, nil
}

// streamNewCollections gives the shards of every collection of nss absent from prev (of
// every database, {db, "*"}, for capture.scope=database), and with no position yet, prev's
// time as their stream position (inclusive: startAtOperationTime), so that their tasks stream
// them from before their creation.
func streamNewCollections(ctx context.Context, store *offsets.Store, connector string, shards int,
	prev listing, nss []namespace, log *slog.Logger) error {
	var entries []offsets.Entry
	for _, ns := range nss {
		if prev.colls[ns] {
			continue
		}
		for i := range shards {
			k := offsets.ShardKey(connector, ns.DB, ns.Coll, i, shards)
			switch _, err := store.Get(k); {
			case err == nil:
				continue // a position of its own: the task resumes there
			case !errors.Is(err, offsets.ErrNotFound):
				return fmt.Errorf("read offset %s: %w", k, err)
			}
			entries = append(entries, offsets.Entry{Key: k, Value: &offsets.Value{
				Version: offsets.FormatVersion, ClusterTime: &offsets.ClusterTime{T: prev.at.T, I: prev.at.I}}})
		}
		what := "a new collection: streaming it from the cluster time it was last seen absent, not copying it"
		if ns.Coll == taskid.AllCollections {
			what = "a new database: streaming it from the cluster time it was last seen absent, not copying it"
		}
		log.Info(what, "connector", connector, "db", ns.DB, "collection", ns.Coll, "from_t", prev.at.T, "from_i", prev.at.I)
	}
	if len(entries) == 0 {
		return nil
	}
	if err := store.CommitMany(ctx, entries); err != nil {
		return fmt.Errorf("record where the new collections' streams start: %w", err)
	}
	return nil
}
