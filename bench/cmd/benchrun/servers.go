package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
	"github.com/mongorelay/mongorelay/worker"
)

// startServers starts the Kafka broker and MongoDB stand-in every system of the run reads and
// writes, private to the run (own ports, own data under the work directory): other engineers'
// tests on the shared environment neither disturb the figures nor get disturbed, and each run
// starts from empty servers. With tlsSystem among the systems it also starts the SASL_SSL-only
// broker that system writes to, with the same JVM and broker settings; with the sink workload,
// the stand-in the sinks write into, whose oplog need not hold what they write.
func startServers(ctx context.Context, cfg *config, reg *proc.Registry) (*testservers.Servers, error) {
	return testservers.Start(ctx, testservers.Config{
		Root: cfg.root, Work: cfg.work,
		KafkaHeap: cfg.kafkaHeap, StandinHeap: cfg.standinHeap, OplogEntries: cfg.oplogEntries,
		Secure:     slices.Contains(cfg.systems, tlsSystem),
		SinkTarget: slices.Contains(cfg.workloads, "sink"), SinkHeap: "3g", SinkOplogEntries: 10_000,
		Logf: logf,
	}, reg)
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
