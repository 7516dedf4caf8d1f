package mongosource

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/changestream"
	"github.com/mongorelay/mongorelay/tasks/config"
)

// mongoIdle is how long a MongoDB client nobody uses stays connected: tasks that move away
// and back, and the leader's task listing every coordinator.Config.ExpandInterval, reuse it.
const mongoIdle = time.Minute

// mongoPool shares one MongoDB client per connection string among a process's tasks and the
// leader's task listing. A client connects (and is pinged) on first use and disconnects once
// unused for mongoIdle.
type mongoPool struct {
	log *slog.Logger
	// ctx bounds connections in progress and the idle loop; stop cancels it and wg waits for
	// them.
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	idler sync.Once // starts the idle loop

	mu      sync.Mutex
	clients map[string]*pooledMongo // by connection string, secrets included: never log keys
}

type pooledMongo struct {
	ready chan struct{} // closed once connected or failed
	conn  mongoConn
	err   error
	refs  int
	idle  time.Time // when refs last dropped to 0
}

// mongoConn is a client of a MongoDB deployment, and the last error it met reaching it.
type mongoConn struct {
	cl   *mongo.Client
	errs *tasks.LastError
	// splitLargeEvents says the deployment runs $changeStreamSplitLargeEvent, read once when
	// the client connects.
	splitLargeEvents bool
}

// newMongoPool returns a pool that, from its first client on, disconnects idle clients until
// close: a pool that never connects (a kind that only validates) runs nothing.
func newMongoPool(log *slog.Logger) *mongoPool {
	ctx, stop := context.WithCancel(context.Background())
	return &mongoPool{log: log, ctx: ctx, stop: stop, clients: map[string]*pooledMongo{}}
}

// acquire returns a connected client for c's deployment; call release when done with it.
func (p *mongoPool) acquire(ctx context.Context, c *config.Config) (conn mongoConn, release func(), err error) {
	key := c.ConnectionString.Reveal()
	p.mu.Lock()
	e, ok := p.clients[key]
	if !ok {
		e = &pooledMongo{ready: make(chan struct{})}
		p.clients[key] = e
	}
	e.refs++
	p.mu.Unlock()

	if !ok {
		p.idler.Do(func() { p.wg.Go(func() { p.run(p.ctx) }) })
		// The connection outlives the caller that happened to ask first: a task stopped
		// while connecting must not fail the others waiting for the same client.
		p.wg.Go(func() {
			errs := &tasks.LastError{}
			cl, err := connectMongo(p.ctx, c, errs)
			conn := mongoConn{cl: cl, errs: errs}
			if err == nil {
				conn.splitLargeEvents = p.splitsLargeEvents(c, cl)
			}
			p.mu.Lock()
			e.conn, e.err = conn, err
			if err != nil {
				delete(p.clients, key) // the next user tries again
			}
			p.mu.Unlock()
			close(e.ready)
		})
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		p.release(e)
		return mongoConn{}, nil, ctx.Err()
	}
	if e.err != nil {
		return mongoConn{}, nil, e.err
	}
	var once sync.Once
	return e.conn, func() { once.Do(func() { p.release(e) }) }, nil
}

// splitsLargeEvents reports whether the deployment runs $changeStreamSplitLargeEvent. A server
// that does not say its version is taken not to: its streams then fail on an event over 16 MB,
// as they would without the stage, rather than on every open.
func (p *mongoPool) splitsLargeEvents(c *config.Config, cl *mongo.Client) bool {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	split, err := changestream.ServerSplitsLargeEvents(ctx, cl)
	if err != nil {
		p.log.Warn("events over 16 MB will fail the change streams: the server did not say whether it can split them",
			"connector", c.Name, "err", err)
	}
	return split
}

func (p *mongoPool) release(e *pooledMongo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		e.idle = time.Now()
	}
}

// run disconnects idle clients until ctx ends.
func (p *mongoPool) run(ctx context.Context) {
	tick := time.NewTicker(mongoIdle / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			p.closeIdle(now, false)
		}
	}
}

// close stops connections in progress and disconnects every client; call it once nothing
// uses the pool any more.
func (p *mongoPool) close() {
	p.stop()
	p.wg.Wait()
	p.closeIdle(time.Time{}, true)
}

func (p *mongoPool) closeIdle(now time.Time, all bool) {
	p.mu.Lock()
	var closing []*mongo.Client
	for key, e := range p.clients {
		select {
		case <-e.ready:
		default:
			continue // still connecting
		}
		if e.err == nil && (all || (e.refs == 0 && now.Sub(e.idle) > mongoIdle)) {
			closing = append(closing, e.conn.cl)
			delete(p.clients, key)
		}
	}
	p.mu.Unlock()
	for _, cl := range closing {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := cl.Disconnect(ctx); err != nil {
			p.log.Debug("disconnect an idle MongoDB client", "err", err)
		}
		cancel()
	}
}
