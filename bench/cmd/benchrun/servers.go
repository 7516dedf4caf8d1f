package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
	"github.com/mongorelay/mongorelay/worker"
)

// startServers starts the Kafka broker and MongoDB stand-in every system of the run reads and
// writes, private to the run (own ports, own data under the work directory): other engineers'
// tests on the shared environment neither disturb the figures nor get disturbed, and each run
// starts from empty servers. With tlsSystem among the systems it also starts the SASL_SSL-only
// broker that system writes to, with the same JVM and broker settings. The latency workload
// and the sink workload get stand-ins of their own: the first stand-in's oplog holds every
// throughput workload for the length of the run, and the documents the latency runs write
// (a million with -latency-repeat 5) or the sinks write would fill its heap and slow every
// later run; theirs need hold only the run under way.
func startServers(ctx context.Context, cfg *config, reg *proc.Registry) (*testservers.Servers, error) {
	return testservers.Start(ctx, testservers.Config{
		Root: cfg.root, Work: cfg.work,
		KafkaHeap: cfg.kafkaHeap, StandinHeap: cfg.standinHeap, OplogEntries: cfg.oplogEntries,
		Secure: slices.Contains(cfg.systems, tlsSystem),
		More:   moreStandins(cfg),
		Logf:   logf,
	}, reg)
}

// moreStandins are the stand-ins of the latency and sink workloads that run.
func moreStandins(cfg *config) []testservers.StandinConfig {
	var more []testservers.StandinConfig
	if slices.Contains(cfg.workloads, "latency") {
		// One latency run writes -latency-rate × -latency-seconds documents (50,000).
		more = append(more, testservers.StandinConfig{Name: latencyStandin, Heap: "5g",
			OplogEntries: max(100_000, 2*cfg.latencyRate*cfg.latencySeconds)})
	}
	if slices.Contains(cfg.workloads, "sink") {
		more = append(more, testservers.StandinConfig{Name: sinkStandin, Heap: "3g", OplogEntries: 10_000})
	}
	return more
}

// The stand-ins of the latency and sink workloads (testservers.Config.More).
const (
	latencyStandin = "mongo-latency"
	sinkStandin    = "mongo-sink"
)

// standin is a MongoDB stand-in of the run as the harness and the systems reach it.
type standin struct {
	proc *proc.Proc
	uri  string
	cl   *mongo.Client
	db   *mongo.Database // benchDB
}

func connectStandin(p *proc.Proc, uri string) (*standin, error) {
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("bench"))
	if err != nil {
		return nil, fmt.Errorf("connect to the stand-in at %s: %w", uri, err)
	}
	return &standin{proc: p, uri: uri, cl: cl, db: cl.Database(benchDB)}, nil
}

func (s *standin) close(ctx context.Context) { _ = s.cl.Disconnect(context.WithoutCancel(ctx)) }

// standinOf is the stand-in systems read workload wl from, or for the sink workload write
// it into.
func (r *runner) standinOf(wl string) *standin {
	switch {
	case wl == "latency" && r.latency != nil:
		return r.latency
	case wl == "sink" && r.sinkTarget != nil:
		return r.sinkTarget
	}
	return r.main
}

// broker is a Kafka of the run as its users reach it: the options every harness client of it
// starts from (kafkaconn.Opts, as mongorelay builds its own clients), the MONGORELAY_* settings
// that point a standalone at it, and an admin client.
type broker struct {
	proc *proc.Proc
	addr string
	opts []kgo.Opt
	env  []string
	cl   *kgo.Client
	adm  *kadm.Client
}

// newBroker connects to the broker p listening on addr with sec.
func newBroker(p *proc.Proc, addr string, sec kafkaconn.Security) (*broker, error) {
	opts, err := kafkaconn.Opts([]string{addr}, sec)
	if err != nil {
		return nil, err
	}
	env := []string{worker.EnvName("kafka.bootstrap.servers") + "=" + addr}
	for _, kv := range [][2]string{{kafkaconn.KeyProtocol, sec.Protocol}, {kafkaconn.KeyMechanism, sec.Mechanism},
		{kafkaconn.KeyUsername, sec.Username}, {kafkaconn.KeyPassword, sec.Password}, {kafkaconn.KeyCA, sec.CA}} {
		if kv[1] != "" {
			env = append(env, worker.EnvName(kv[0])+"="+kv[1])
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &broker{proc: p, addr: addr, opts: opts, env: env, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// secureBroker is the SASL_SSL broker as relay-1-tls reaches it: SCRAM-SHA-512 over TLS,
// trusting the CA that signed the broker's certificate.
func secureBroker(k *testservers.SecureKafka) (*broker, error) {
	return newBroker(k.Proc, k.Addr, kafkaconn.Security{Protocol: "SASL_SSL", Mechanism: "SCRAM-SHA-512",
		Username: k.User, Password: k.Password, CA: k.Certs.CA, EndpointAlgorithm: "https"})
}

// clientOpts are b's options followed by more, for one client.
func (b *broker) clientOpts(more ...kgo.Opt) []kgo.Opt {
	return append(slices.Clip(b.opts), more...)
}

func (b *broker) createTopic(ctx context.Context, topic string) error {
	resp, err := b.adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s on %s: %w", topic, b.addr, err)
	}
	return nil
}

func (b *broker) close() { b.cl.Close() }

// brokerOf is the broker sys writes to.
func (r *runner) brokerOf(sys string) *broker {
	if sys == tlsSystem {
		return r.secure
	}
	return r.plain
}
