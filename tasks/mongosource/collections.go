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
	"github.com/mongorelay/mongorelay/tasks/taskid"
)

// connectMongo connects to a connector's MongoDB deployment and checks that it answers, so
// that a wrong address or credentials fail with the config key to fix. The client records in
// errs its failures to reach the deployment's servers (heartbeats), which a task's degraded
// reason quotes.
func connectMongo(ctx context.Context, c *config.Config, errs *tasks.LastError) (*mongo.Client, error) {
	monitor := &event.ServerMonitor{ServerHeartbeatFailed: func(e *event.ServerHeartbeatFailedEvent) { errs.Set(e.Failure) }}
	opts := options.Client().ApplyURI(c.ConnectionString.Reveal()).SetServerMonitor(monitor)
	if opts.AppName == nil { // the connection string's appName, if any, names the connector's clients on the server
		opts.SetAppName("mongorelay")
	}
	mc, err := mongo.Connect(opts)
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

// scopeUnits are what a connector's tasks stream, given its collections nss (sorted): the
// collections themselves (capture.scope=collection), each database that has one (database,
// as {db, "*"}), or the deployment (deployment, {"*", "*"}, even with no collection yet).
func scopeUnits(scope config.CaptureScope, nss []namespace) []namespace {
	switch scope {
	case config.ScopeDatabase:
		var out []namespace
		for _, ns := range nss {
			if len(out) == 0 || out[len(out)-1].DB != ns.DB {
				out = append(out, namespace{DB: ns.DB, Coll: taskid.AllCollections})
			}
		}
		return out
	case config.ScopeDeployment:
		return []namespace{{DB: taskid.AllCollections, Coll: taskid.AllCollections}}
	}
	return nss
}
