package local_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// The private SASL_SSL Kafka authenticates SCRAM users created at format time over TLS, and
// a plaintext client gets nothing from it.
func TestSecureKafkaAcceptsOnlySCRAMOverTLS(t *testing.T) {
	k := testenv.StartSecureKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
		opts, err := kafkaconn.Opts([]string{k.Addr}, kafkaconn.Security{Protocol: "SASL_SSL", Mechanism: mech,
			Username: k.User, Password: k.Password, CA: k.Certs.CA, EndpointAlgorithm: "https"})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		err = cl.Ping(ctx)
		cl.Close()
		if err != nil {
			t.Fatalf("%s over TLS: %v", mech, err)
		}
	}
	plain, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := plain.Ping(pctx); err == nil {
		t.Fatal("a plaintext client reached the SASL_SSL listener")
	}
}
