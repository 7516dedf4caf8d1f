package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/api"
	"github.com/mongorelay/mongorelay/coordinator"
	"github.com/mongorelay/mongorelay/tasks"
	"github.com/mongorelay/mongorelay/tasks/offsets"
)

// Cluster is one node of a mongorelay cluster (mongorelay worker, DESIGN.md 1 and 3): it takes
// part in Raft (package coordinator), serves the REST API on http.listen and the schema
// registry on registry.listen, heartbeats to the leader and runs the tasks assigned to it.
//
// Stopping it (its context ends, on SIGTERM) stops its tasks cleanly, flushing and committing
// what they wrote, and leaves the node a member: a restart with the same data dir takes its
// place again, and meanwhile its tasks move to other nodes after worker.session.timeout. To
// take a node out of the cluster for good, run mongorelay worker leave.
type Cluster struct {
	cfg             Config
	log             *slog.Logger // with the node key once the id is known
	base            *slog.Logger // without it, for the coordinator, which adds it
	version, commit string

	id             string
	kafka          *kgo.Client
	kafkaClusterID string
	offsets        *offsets.Store
	node           *coordinator.Node
	registry       *clusterRegistry
	evolutions     *tasks.Evolutions // shared by this node's tasks
	mongo          *mongoPool
	reports        *taskReports
	runner         *runner
	peers          *api.PeerClient
}

// NewCluster returns a node that will run with cfg (from ParseWorkerFlags).
func NewCluster(cfg Config, log *slog.Logger, version, commit string) *Cluster {
	return &Cluster{cfg: cfg, log: log, base: log, version: version, commit: commit}
}

// Run starts the node and blocks until ctx ends (then it stops cleanly and returns nil), or
// until the node cannot go on: it could not start, or it was removed from the cluster
// (ErrRemoved).
func (c *Cluster) Run(ctx context.Context) (err error) {
	cfg := c.cfg
	if c.id, err = resolveNodeID(cfg.DataDir, cfg.NodeID); err != nil {
		return err
	}
	c.log = c.base.With("node", c.id)
	httpLn, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("worker config %q: listen on %s: %w (choose a free address)", "http.listen", cfg.HTTPListen, err)
	}
	defer httpLn.Close()
	httpAddr := cfg.HTTPAdvertise
	if httpAddr == "" {
		if httpAddr, err = advertiseFor(httpLn.Addr().String()); err != nil {
			return fmt.Errorf("derive http.advertise: %w", err)
		}
	}
	raftAddr := cfg.RaftAdvertise
	if raftAddr == "" {
		if host, port, _ := net.SplitHostPort(cfg.RaftListen); net.ParseIP(host) == nil || net.ParseIP(host).IsUnspecified() {
			if port == "0" {
				return fmt.Errorf("worker config %q: raft.listen %s has no fixed port: give raft.advertise", "raft.advertise", cfg.RaftListen)
			}
			if raftAddr, err = advertiseFor(cfg.RaftListen); err != nil {
				return fmt.Errorf("derive raft.advertise: %w", err)
			}
		}
	}
	c.log.Info("mongorelay worker starting", "version", c.version, "commit", c.commit, "cluster", cfg.ClusterID,
		"data_dir", cfg.DataDir, "http", httpLn.Addr().String(), "http_advertise", httpAddr, "raft", cfg.RaftListen)

	if err := c.openKafka(ctx); err != nil {
		return err
	}
	defer c.kafka.Close()
	if c.offsets, err = offsets.Open(ctx, cfg.KafkaBrokers, cfg.OffsetsTopic,
		offsets.ReplicationFactor(int16(cfg.ReplicationFactor)), offsets.Logger(c.log)); err != nil {
		return fmt.Errorf("open offsets topic %s: %w", cfg.OffsetsTopic, err)
	}
	defer c.offsets.Close()

	c.mongo = newMongoPool(c.log)
	defer c.mongo.close() // after the coordinator's shutdown: the leader lists tasks with it
	c.reports = newTaskReports()
	c.peers = api.NewPeerClient(&http.Client{Timeout: 30 * time.Second})
	c.node, err = coordinator.Open(ctx, coordinator.Config{
		NodeID: c.id, DataDir: cfg.DataDir, RaftListen: cfg.RaftListen, RaftAdvertise: raftAddr, HTTPAdvertise: httpAddr,
		Bootstrap: cfg.Bootstrap, Peers: cfg.Peers, Voters: cfg.RaftVoters,
		HeartbeatInterval: cfg.HeartbeatInterval, SessionTimeout: cfg.SessionTimeout, Lease: cfg.Lease,
		Expand: c.expand, Logger: c.base,
	})
	if err != nil {
		return fmt.Errorf("start the coordinator: %w", err)
	}
	defer func() {
		if err := c.node.Shutdown(); err != nil {
			c.log.Warn("coordinator shutdown", "err", err)
		}
	}()
	c.registry = newClusterRegistry(c.node, c.peers, c.log)
	c.evolutions = tasks.NewEvolutions()
	c.runner = newRunner(nodeAssignments{c.node}, c.runTask, c.log)

	stopREST := serve(httpLn, api.NewServer(clusterAPI{c}, api.WithLogger(c.log)).Handler(), "REST API", c.log)
	defer stopREST()
	stopRegistry, err := serveRegistry(cfg.RegistryListen, c.registry, c.log)
	if err != nil {
		return err
	}
	defer stopRegistry()
	c.log.Info("REST API listening", "addr", httpLn.Addr().String())

	return c.serve(ctx, httpAddr)
}

// serve runs the node's loops until ctx ends or the node was removed, then stops them: the
// tasks first, so that they flush and commit while the node still heartbeats.
func (c *Cluster) serve(ctx context.Context, httpAddr string) error {
	var wg sync.WaitGroup
	loops, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopLoops(); wg.Wait() }()

	var join *joiner
	if targets := c.cfg.Join; len(targets) > 0 {
		join = newJoiner(targets, api.JoinRequest{NodeID: c.id, RaftAddr: c.node.RaftAddr(), HTTPAddr: httpAddr}, c.peers.Join, c.log)
		wg.Go(func() { join.run(loops) })
	}
	hb := &heartbeats{
		node: c.node, httpAddr: httpAddr, interval: c.cfg.HeartbeatInterval,
		send: c.peers.Heartbeat, local: clusterAPI{c}.Heartbeat, reports: c.runner.Reports, log: c.log,
	}
	if join != nil {
		hb.rejoin = join.again
	}
	removed := make(chan error, 1)
	wg.Go(func() { removed <- hb.run(loops) })
	wg.Go(func() { c.mongo.run(loops) })
	wg.Go(func() { c.refreshOffsets(loops) })

	tasksCtx, stopTasks := context.WithCancel(loops)
	tasksDone := make(chan struct{})
	go func() {
		defer close(tasksDone)
		c.runner.Run(tasksCtx)
	}()

	var err error
	select {
	case <-ctx.Done():
		c.log.Info("stopping: stopping tasks, flushing records and committing offsets; the node stays a member")
	case err = <-removed:
		c.log.Error("stopping", "err", err)
	}
	stopTasks()
	<-tasksDone
	return err
}

// openKafka connects the node's shared client (topic creation and checks; tasks write
// through their own transactional clients) and checks that Kafka answers.
func (c *Cluster) openKafka(ctx context.Context) error {
	var err error
	c.kafka, err = kgo.NewClient(c.kafkaOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client for %v: %w", c.cfg.KafkaBrokers, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.kafka.Ping(pingCtx); err != nil {
		c.kafka.Close()
		return fmt.Errorf("reach Kafka at %v (kafka.bootstrap.servers): %w", c.cfg.KafkaBrokers, err)
	}
	if md, err := kadm.NewClient(c.kafka).BrokerMetadata(pingCtx); err == nil {
		c.kafkaClusterID = md.Cluster
	}
	return nil
}
