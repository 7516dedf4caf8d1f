package mongosource

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// connectMongo connects to a connector's MongoDB deployment and checks that it answers, so
// that a wrong address or credentials fail with the config key to fix. The client records in
// errs its failures to reach the deployment's servers (heartbeats), which a task's degraded
// reason quotes.
func connectMongo(ctx context.Context, c *config.Config, errs *tasks.LastError) (*mongo.Client, error) {
	monitor := &event.ServerMonitor{ServerHeartbeatFailed: func(e *event.ServerHeartbeatFailedEvent) { errs.Set(e.Failure) }}
	mc, err := mongo.Connect(options.Client().ApplyURI(c.ConnectionString.Reveal()).SetAppName("mongorelay").SetServerMonitor(monitor))
	if err != nil {
		return nil, fmt.Errorf("connector %s: config %q: %w", c.Name, "mongodb.connection.string", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := mc.Ping(pingCtx, nil); err != nil {
		_ = mc.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("connector %s: config %q: cannot reach MongoDB at %s: %w (check the host, port and credentials)",
			c.Name, "mongodb.connection.string", c.ConnectionString, err)
	}
	return mc, nil
}

// namespace is a collection of a database.
type namespace struct{ DB, Coll string }

// collectionsOf lists the collections a connector captures, sorted. On an error it returns
// what it listed before it.
func collectionsOf(ctx context.Context, mc *mongo.Client, c *config.Config) ([]namespace, error) {
	dbs, err := mc.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	slices.Sort(dbs)
	var out []namespace
	for _, db := range dbs {
		colls, err := mc.Database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return out, fmt.Errorf("list collections of %s: %w", db, err)
		}
		slices.Sort(colls)
		for _, coll := range colls {
			if c.Includes(db, coll) {
				out = append(out, namespace{DB: db, Coll: coll})
			}
		}
	}
	return out, nil
}
