package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/api/metrics"
	"github.com/mongorelay/mongorelay/api/peer"
	"github.com/mongorelay/mongorelay/api/registryapi"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/coordinator/assign"
	"github.com/mongorelay/mongorelay/internal/configprovider"
	"github.com/mongorelay/mongorelay/internal/httpserve"
	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/internal/kafkatopic"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/kafkastore"
	"github.com/mongorelay/mongorelay/registry/replicated"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/connector"
	"github.com/mongorelay/mongorelay/tasks/mongosink"
	"github.com/mongorelay/mongorelay/tasks/mongosource"
	"github.com/mongorelay/mongorelay/tasks/offsets"
	"github.com/mongorelay/mongorelay/tasks/taskid"
	"github.com/mongorelay/mongorelay/tasks/taskmetrics"
)

// standaloneID is a standalone process's node id and the cluster.id of its transactional ids.
const standaloneID = "mongorelay-standalone"

// forwardWait is how long a write that needs the leader waits for one to be elected.
const forwardWait = 10 * time.Second

// offsetsRefreshInterval is how often a node with tasks reads what other nodes committed to
// the offsets topic: tasks waiting for another shard's snapshot ranges poll the store.
const offsetsRefreshInterval = 500 * time.Millisecond

// Node is one mongorelay process (DESIGN.md 1 and 3). As a cluster node (mongorelay worker,
// NewCluster) it takes part in Raft (package coordinator), heartbeats to the leader and runs
// the tasks the leader assigns to it. A standalone process (mongorelay standalone,
// NewStandalone) is the same node alone in a cluster kept in memory, never fenced, whose
// connectors come from files, like Kafka Connect's standalone mode: its offsets and schemas
// still live in Kafka, so a restart resumes where it stopped. Either way it serves the REST
// API on http.listen and the schema registry on registry.listen, and runs its tasks through
// one runner: restarts with backoff, FAILED with a trace, tasks.max.
//
// Stopping it (its context ends, on SIGTERM) stops its tasks cleanly, flushing and committing
// what they wrote. A cluster node stays a member: a restart with the same data dir takes its
// place again, and meanwhile its tasks move to other nodes at once, or once
// worker.rebalance.delay has passed without it back. To take a node out of the cluster for
// good, run mongorelay worker leave.
type Node struct {
	cfg             Config
	derivedTopics   bool         // the offsets topic is named after cluster.id, not by the config
	log             *slog.Logger // with the node key once the id is known
	base            *slog.Logger // without it, for the coordinator, which adds it
	version, commit string
	// files are a standalone process's connectors; nil for a cluster node.
	files []Connector

	id             string
	kafka          *kgo.Client
	kafkaOpts      []kgo.Opt // every Kafka client's: brokers, TLS, SASL
	kafkaClusterID string
	offsets        *offsets.Store
	node           *coordinator.Node
	registry       nodeRegistry
	raftRegistry   *replicated.Registry // a cluster node's registry, nil in standalone
	catalog        *connector.Catalog
	reports        *taskReports
	runner         *runner
	peers          *peer.Client
	loggers        *api.Loggers // the levels /admin/loggers and the cluster's levels change
	listeners      listeners
	// metrics is the node's Prometheus registry; taskMetrics what its tasks count into it.
	metrics     *metrics.Registry
	taskMetrics *taskmetrics.Set
}

// nodeRegistry is the schema registry a node serves and its tasks use.
type nodeRegistry interface {
	registryapi.SchemaRegistry
	tasks.SchemaRegistry
}

// NewCluster returns a cluster node that will run with cfg (from ParseWorkerFlags).
func NewCluster(cfg Config, log *slog.Logger, version, commit string) *Node {
	cfg, derived := cfg.withTopics()
	return &Node{cfg: cfg, log: log, base: log, version: version, commit: commit, derivedTopics: derived}
}

// NewStandalone returns a standalone process that will run conns (from LoadConnectorFiles)
// with cfg (from ParseFlags).
func NewStandalone(cfg Config, conns []Connector, log *slog.Logger, version, commit string) *Node {
	cfg.ClusterID = standaloneID
	cfg.RaftVoters = 1
	cfg.HeartbeatInterval = coordinator.DefaultHeartbeatInterval
	cfg.SessionTimeout = coordinator.DefaultSessionTimeout
	cfg.Lease = coordinator.DefaultLease
	if conns == nil {
		conns = []Connector{}
	}
	cfg, derived := cfg.withTopics()
	return &Node{cfg: cfg, log: log, base: log, version: version, commit: commit, files: conns, derivedTopics: derived}
}

func (n *Node) standalone() bool { return n.files != nil }

// ErrOutdatedBuild means the cluster committed a Raft command this node's build cannot read:
// a node of a newer build wrote it, during a rolling upgrade. The node stops, and refuses the
// command again on every start, until it runs that newer build.
var ErrOutdatedBuild = errors.New("this node's build is older than the cluster's")

// Run starts the node and blocks until ctx ends, then stops cleanly. It returns nil, or why
// the node could not start or go on: a cluster node removed from the cluster (ErrRemoved) or
// one whose build cannot read what the cluster committed (ErrOutdatedBuild), a
// standalone process one of whose tasks had FAILED (the others go on running until the stop,
// as in Kafka Connect), so that a supervisor sees the failure in the exit status.
func (n *Node) Run(ctx context.Context) (err error) {
	cfg := n.cfg
	if n.standalone() {
		n.id = standaloneID
	} else if n.id, err = resolveNodeID(cfg.DataDir, cfg.NodeID); err != nil {
		return err
	} else if err := checkClusterID(cfg.DataDir, cfg.ClusterID); err != nil {
		return err
	}
	n.log = n.base.With("node", n.id)
	n.loggers = api.NewLoggers(n.base)
	n.initMetrics()
	if n.listeners, err = cfg.openListeners(); err != nil {
		return err
	}
	cfg.warnListeners(n.log)
	httpLn, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("worker config %q: listen on %s: %w (choose a free address)", "http.listen", cfg.HTTPListen, err)
	}
	defer httpLn.Close()
	httpAddr, raftAddr, err := n.advertised(httpLn)
	if err != nil {
		return err
	}
	n.log.Info("mongorelay starting", "mode", n.mode(), "version", n.version, "commit", n.commit, "cluster", cfg.ClusterID,
		"data_dir", cfg.DataDir, "http", httpLn.Addr().String(), "http_advertise", httpAddr, "raft", cfg.RaftListen)

	if err := n.openKafka(ctx); err != nil {
		return err
	}
	defer n.kafka.Close()
	if n.derivedTopics {
		if err := checkLegacyTopics(ctx, n.kafkaOpts, cfg); err != nil {
			return err
		}
	}
	if n.offsets, err = offsets.Open(ctx, cfg.KafkaBrokers, cfg.OffsetsTopic, offsets.ClientOptions(n.kafkaOpts...),
		offsets.OwnClientOptions(n.metricsOpts("offsets")...),
		offsets.ReplicationFactor(int16(cfg.ReplicationFactor)), offsets.Logger(n.log),
		offsets.ClusterID(cfg.ClusterID)); err != nil {
		if other, ok := errors.AsType[*kafkatopic.OtherClusterError](err); ok {
			return fmt.Errorf("worker config %q: %w", other.ConfigKey, err)
		}
		return fmt.Errorf("open offsets topic %s: %w", cfg.OffsetsTopic, kafkaconn.Explain(err))
	}
	defer n.offsets.Close()
	n.peers = n.listeners.peerClient()
	closeRegistry, err := n.openRegistry(ctx)
	if err != nil {
		return err
	}
	defer closeRegistry()

	mongo := mongosource.New(mongosource.Env{
		Kafka: n.kafka, KafkaOpts: n.kafkaOpts, Compression: cfg.Compression, Offsets: n.offsets,
		Registry: n.registry, ClusterID: cfg.ClusterID, ShutdownTimeout: cfg.ShutdownTimeout,
		TransactionTimeout: cfg.TransactionTimeout, Logger: n.log,
	})
	defer mongo.Close() // after the coordinator's shutdown: the leader lists tasks with it
	sink := mongosink.New(mongosink.Env{
		Kafka: n.kafka, KafkaOpts: n.kafkaOpts, Offsets: n.offsets, Registry: n.registry, ClusterID: cfg.ClusterID,
		TransactionTimeout: cfg.TransactionTimeout, Logger: n.log,
	})
	if n.catalog, err = connector.NewCatalog(mongo, sink); err != nil {
		return err
	}
	for _, c := range n.files {
		// Everything a connector needs is reached before any task writes.
		if err := n.catalog.Check(ctx, c.Name, c.Config); err != nil {
			return err
		}
	}

	n.reports = newTaskReports()
	n.node, err = coordinator.Open(ctx, coordinator.Config{
		NodeID: n.id, ClusterID: cfg.ClusterID, DataDir: cfg.DataDir, RaftListen: cfg.RaftListen, RaftAdvertise: raftAddr, HTTPAdvertise: httpAddr,
		InMemory: n.standalone(), Bootstrap: cfg.Bootstrap || n.standalone(), Peers: cfg.Peers, Voters: cfg.RaftVoters,
		SnapshotThreshold: cfg.RaftSnapshotThreshold, SnapshotInterval: cfg.RaftSnapshotInterval,
		HeartbeatInterval: cfg.HeartbeatInterval, SessionTimeout: cfg.SessionTimeout, Lease: cfg.Lease,
		RaftTLS: n.listeners.raft, Expand: n.expand, Logger: n.base,
	})
	if err != nil {
		return fmt.Errorf("start the coordinator: %w", err)
	}
	defer func() {
		if err := n.node.Shutdown(); err != nil {
			n.log.Warn("coordinator shutdown", "err", err)
		}
	}()
	var src assignmentSource = nodeAssignments{n.node}
	if n.standalone() {
		src = neverFenced{src}
	} else if err := n.raftRegistry.Bind(ctx, n.node); err != nil {
		return err
	}
	n.runner = newRunner(src, n.runTask, n.log)

	stopREST := httpserve.Serve(httpLn, n.handler(), n.listeners.restTLS, "REST API", n.log)
	defer stopREST()
	stopRegistry, err := serveRegistry(cfg.RegistryListen, n.registry, n.listeners, cfg.RegistryAuthReads, n.log)
	if err != nil {
		return err
	}
	defer stopRegistry()
	n.log.Info("REST API listening", "addr", httpLn.Addr().String(), "tls", n.listeners.tls != nil, "auth", n.listeners.users.Enabled())
	if err := n.createFileConnectors(ctx); err != nil {
		return err
	}
	return n.serve(ctx, httpAddr)
}

// handler serves the REST listener: every mount of restMounts.
func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	for _, m := range n.restMounts() {
		mux.Handle(m.prefix, m.handler)
	}
	return mux
}

// mount is a handler and the path prefix it serves on the REST listener.
type mount struct {
	prefix  string
	handler http.Handler
}

// restMounts are what the REST listener serves: the REST API and, on a cluster node, under
// peer.Prefix, what other nodes send this one. A standalone process has no other nodes: it
// serves no peer route, so that nobody can heartbeat, join or write its registry there. The
// OpenAPI document (api/openapi.json) describes the routes of each; a test checks it against
// them.
func (n *Node) restMounts() []mount {
	var mounts []mount
	if !n.standalone() {
		mounts = append(mounts, mount{peer.Prefix, peer.NewHandler(peerNode{n}, n.peers, n.listeners.secret, forwardWait, n.log)})
	}
	return append(mounts, mount{"/", api.NewServer(nodeAPI{n}, n.catalog, api.WithLogger(n.log), api.WithForwardWait(forwardWait),
		api.WithForwardClient(n.listeners.client, n.listeners.scheme), api.WithAuth(n.listeners.users), api.WithLoggers(n.loggers),
		api.WithClusterSecret(n.listeners.secret), api.WithMetrics(n.metrics.Handler())).Handler()})
}

func (n *Node) mode() string {
	if n.standalone() {
		return "standalone"
	}
	return "cluster"
}

// advertised returns the addresses other nodes reach this one at: the REST API's and Raft's
// (none for a standalone process, whose Raft is in memory).
func (n *Node) advertised(httpLn net.Listener) (httpAddr, raftAddr string, err error) {
	cfg := n.cfg
	httpAddr = cfg.HTTPAdvertise
	if httpAddr == "" {
		if httpAddr, err = advertiseFor(httpLn.Addr().String()); err != nil {
			return "", "", fmt.Errorf("derive http.advertise: %w", err)
		}
	}
	if n.standalone() {
		return httpAddr, "", nil
	}
	raftAddr = cfg.RaftAdvertise
	if raftAddr == "" {
		if host, port, _ := net.SplitHostPort(cfg.RaftListen); net.ParseIP(host) == nil || net.ParseIP(host).IsUnspecified() {
			if port == "0" {
				return "", "", fmt.Errorf("worker config %q: raft.listen %s has no fixed port: give raft.advertise", "raft.advertise", cfg.RaftListen)
			}
			if raftAddr, err = advertiseFor(cfg.RaftListen); err != nil {
				return "", "", fmt.Errorf("derive raft.advertise: %w", err)
			}
		}
	}
	return httpAddr, raftAddr, nil
}

// openRegistry opens the node's schema registry: a cluster's lives in Raft (bound to the
// coordinator once it is open); a standalone process's in the schemas topic, so that ids
// survive the process.
func (n *Node) openRegistry(ctx context.Context) (closeRegistry func(), err error) {
	if !n.standalone() {
		n.raftRegistry = replicated.New(n.peers, n.log)
		n.registry = n.raftRegistry
		return func() {}, nil
	}
	cfg := n.cfg
	store, err := kafkastore.Open(ctx, kafkastore.Topic(cfg.SchemasTopic),
		kafkastore.ReplicationFactor(int16(cfg.ReplicationFactor)),
		kafkastore.ClientOpts(n.kafkaOpts...), kafkastore.Logger(n.log), kafkastore.ClusterID(cfg.ClusterID))
	if err != nil {
		if other, ok := errors.AsType[*kafkatopic.OtherClusterError](err); ok {
			return nil, fmt.Errorf("worker config %q: %w", other.ConfigKey, err)
		}
		return nil, fmt.Errorf("open schemas topic %s: %w", cfg.SchemasTopic, kafkaconn.Explain(err))
	}
	reg, err := registry.New(ctx, store, registry.Logger(n.log))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("load the schema registry from %s: %w", cfg.SchemasTopic, err)
	}
	n.registry = reg
	return store.Close, nil
}

// createFileConnectors creates a standalone process's connectors once it leads its own
// one-node cluster (at once: its Raft is in memory).
func (n *Node) createFileConnectors(ctx context.Context) error {
	if len(n.files) == 0 {
		return nil
	}
	for !n.node.IsLeader() {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	for _, c := range n.files {
		if err := n.node.CreateConnector(ctx, c.Name, c.Config, coordinator.StateRunning); err != nil {
			return fmt.Errorf("create connector %s: %w", c.Name, err)
		}
	}
	return nil
}

// serve runs the node's loops until ctx ends or the node was removed, then stops them: the
// tasks first, so that they flush and commit while the node still heartbeats.
func (n *Node) serve(ctx context.Context, httpAddr string) error {
	var wg sync.WaitGroup
	loops, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopLoops(); wg.Wait() }()

	var join *joiner
	if targets := n.cfg.Join; len(targets) > 0 {
		join = newJoiner(targets, peer.JoinRequest{ClusterID: n.cfg.ClusterID, NodeID: n.id, RaftAddr: n.node.RaftAddr(), HTTPAddr: httpAddr},
			n.peers.Join, n.log)
		wg.Go(func() { join.run(loops) })
	}
	hb := &heartbeats{
		node: n.node, httpAddr: httpAddr, interval: n.cfg.HeartbeatInterval, restartWithin: n.cfg.RebalanceDelay,
		send: n.peers.Heartbeat, local: peerNode{n}.Heartbeat, reports: n.taskReports, log: n.log,
	}
	if join != nil {
		hb.rejoin = join.again
	}
	removed, quitBeats := make(chan error, 1), make(chan struct{})
	wg.Go(func() { removed <- hb.run(loops, quitBeats) })
	wg.Go(func() { n.refreshOffsets(loops) })
	wg.Go(func() { n.followLogLevels(loops) })

	tasksCtx, stopTasks := context.WithCancel(loops)
	tasksDone := make(chan struct{})
	go func() {
		defer close(tasksDone)
		n.runner.Run(tasksCtx)
	}()

	var err error
	clean := false // stopping as asked, a member still: hand the leadership and the tasks over
	select {
	case <-ctx.Done():
		clean = !n.standalone()
		n.log.Info("stopping: stopping tasks, flushing records and committing offsets")
	case err = <-removed:
		n.log.Error("stopping", "err", err)
	case err = <-join.refusals():
		n.log.Error("stopping", "err", err)
	case <-n.node.Refused():
		// Its state lags the cluster's from here on: its tasks move to nodes that read it
		// all, as after any clean stop.
		clean = true
		err = fmt.Errorf("%w: it cannot read a command the cluster committed (%s): upgrade this node to the build the other nodes run, then start it again",
			ErrOutdatedBuild, n.node.RefusedCommand())
		n.log.Error("stopping", "err", err)
	}
	if clean {
		n.handOverLeadership(context.WithoutCancel(ctx))
	}
	stopTasks()
	<-tasksDone
	if clean {
		// No heartbeat may follow the farewell, nor reach the leader after it: the heartbeat in
		// flight is answered before run returns, and so before the loops' context ends.
		close(quitBeats)
		<-removed
		stopLoops()
		wg.Wait()
		hb.farewell(context.WithoutCancel(ctx))
	}
	if err == nil && n.standalone() {
		err = n.runner.failures()
	}
	return err
}

// taskReports are the states of this node's tasks for its heartbeat, with their figures.
func (n *Node) taskReports() []peer.TaskReport {
	reports := n.runner.Reports()
	st, now := n.node.State(), time.Now()
	for i, r := range reports {
		c, ok := st.Connector(r.Connector)
		if !ok {
			continue
		}
		for _, t := range c.Tasks {
			if t.Name() != r.Task {
				continue
			}
			if f, ok := n.taskMetrics.Lookup(taskmetrics.Key{Connector: r.Connector, Task: t.ID}).Figures(now); ok {
				reports[i].EventsSeen, reports[i].BehindSourceMs = &f.EventsSeen, &f.BehindSourceMs
			}
		}
	}
	return reports
}

// handOverWait bounds a stopping leader's transfer of the leadership.
const handOverWait = 3 * time.Second

// handOverLeadership makes another voter the leader when this node leads, so that the
// cluster goes on with a leader at once rather than after an election timeout, and the new
// leader moves this node's tasks when told it stops.
func (n *Node) handOverLeadership(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, handOverWait)
	defer cancel()
	handed, err := n.node.TransferLeadership(ctx)
	if err != nil {
		n.log.Warn("stopping: could not hand the leadership over; the others elect a leader after Raft's timeout", "err", err)
	}
	if !handed {
		return
	}
	leader, _ := n.node.Leader()
	n.log.Info("stopping: leadership handed over", "leader", leader)
}

// metricsOpts are the options that give the node's Kafka client for role (node, offsets) its
// id and its metrics. Only for a client that plays the role alone: a second client with the
// id at the same time would go without metrics.
func (n *Node) metricsOpts(role string) []kgo.Opt {
	return n.metrics.KafkaClient("mongorelay-" + n.id + "-" + role)
}

// openKafka connects the node's shared client (topic creation and checks; tasks write
// through their own transactional clients) and checks that Kafka answers and accepts the
// node's credentials: a refused one fails the start, naming the setting to fix.
func (n *Node) openKafka(ctx context.Context) error {
	var err error
	if n.kafkaOpts, err = n.cfg.KafkaOpts(); err != nil {
		return err
	}
	n.kafka, err = kgo.NewClient(slices.Concat(n.kafkaOpts, n.metricsOpts("node"))...)
	if err != nil {
		return fmt.Errorf("kafka client for %v: %w", n.cfg.KafkaBrokers, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.kafka.Ping(pingCtx); err != nil {
		n.kafka.Close()
		return fmt.Errorf("reach Kafka at %v (kafka.bootstrap.servers): %w", n.cfg.KafkaBrokers, kafkaconn.Explain(err))
	}
	if md, err := kadm.NewClient(n.kafka).BrokerMetadata(pingCtx); err == nil {
		n.kafkaClusterID = md.Cluster
	}
	return nil
}

// expand lists a connector's tasks for the leader (coordinator.ExpandFunc): its kind's, or
// tasks.max tasks sharing them when there are more (Kafka Connect's cap).
func (n *Node) expand(ctx context.Context, name string, config map[string]string) ([]taskid.Spec, error) {
	specs, err := n.catalog.Expand(ctx, name, config)
	if err != nil {
		return nil, err
	}
	// Validated by the kind, which resolved it just now; absent is no cap.
	tasksMax, err := configprovider.Resolve(config["tasks.max"])
	if err != nil {
		return nil, fmt.Errorf("connector %s: config %q: %w", name, "tasks.max", err)
	}
	limit, _ := strconv.Atoi(strings.TrimSpace(tasksMax))
	return assign.Share(specs, limit), nil
}

// runTask runs one task assigned to this node with its kind (runTaskFunc).
func (n *Node) runTask(ctx context.Context, a coordinator.Assignment, degraded func(string)) error {
	t := connector.Task{Connector: a.Connector, Config: a.Config, Spec: a.Spec, Degraded: degraded,
		Metrics:     n.taskMetrics.Task(taskmetrics.Key{Connector: a.Connector, Task: a.TaskID}, a.Config["topic.prefix"]),
		KafkaClient: n.metrics.KafkaClient, SnapshotRequests: n.snapshotRequests(a.Connector),
		SnapshotSignal: n.snapshotSignals(a.Connector)}
	if !n.standalone() {
		t.WriterID = writerID(n.id, a.Epoch)
	}
	return n.catalog.Run(ctx, t)
}

// fenceWait bounds the fencing of a connector's transactional ids.
const fenceWait = 10 * time.Second

// fenceTasks initialises, once each, the transactional ids of the collection shards of a
// connector just deleted, or STOPPED and having its offsets changed (why says which; DESIGN.md
// 6), so that no task still stopping commits a transaction after it. A task stopped cleanly
// aborted its transaction, but one whose node was killed mid-transaction left it open, and no
// task will use the id again to abort it: until the brokers time it out
// (transaction.timeout.ms) it holds back every connector's read_committed reads of the offsets
// topic. The leader does it, here, since the delete or offsets change reaches it (writes are
// forwarded to the leader) with the tasks still in its state, whichever nodes ran them and
// whether or not they are alive. Fencing a task still stopping only makes its last abort fail.
// A failure is logged: the timeout still bounds the damage.
func (n *Node) fenceTasks(ctx context.Context, c coordinator.Connector, why string) {
	var ids []string
	for _, t := range c.Tasks {
		for _, u := range t.Spec.Units() {
			ids = append(ids, taskid.TransactionalID(n.cfg.ClusterID, c.Name, u.Name()))
		}
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fenceWait)
	defer cancel()
	tx := tasks.Transactional{ClientOpts: n.kafkaOpts, Timeout: n.cfg.TransactionTimeout}
	if err := tx.Fence(ctx, ids...); err != nil {
		n.log.Warn("fencing the connector's transactional ids failed: a transaction its tasks left open "+
			"holds offset reads back until transaction.timeout.ms", "connector", c.Name, "why", why, "err", err)
		return
	}
	n.log.Info("fenced the connector's transactional ids", "connector", c.Name, "why", why, "ids", len(ids))
}

// writerID names who wrote a record (the mongorelay.writer header): the node and the epoch it
// owns the task at, so that a consumer can check that a task's writers only ever move on.
func writerID(node string, epoch uint64) string { return fmt.Sprintf("%s/e%d", node, epoch) }

// refreshOffsets keeps the offsets store up to date with other nodes' commits while this node
// runs tasks, until ctx ends.
func (n *Node) refreshOffsets(ctx context.Context) {
	tick := time.NewTicker(offsetsRefreshInterval)
	defer tick.Stop()
	var warned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n.runner.Running() == 0 || n.standalone() {
			continue // a standalone process's store holds every commit already: it made them
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.offsets.Refresh(rctx)
		cancel()
		if err != nil && ctx.Err() == nil && time.Since(warned) > time.Minute {
			warned = time.Now()
			n.log.Warn("reading other nodes' offsets failed; retrying", "err", err)
		}
	}
}

// errStandalone answers the cluster-only calls a standalone process gets.
var errStandalone = errors.New("a standalone process is a cluster of its own: run mongorelay worker to form a cluster of several nodes")
