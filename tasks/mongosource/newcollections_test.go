package mongosource

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/offsets"
)

func TestConfigFingerprintTellsConfigsApart(t *testing.T) {
	a := configFingerprint(map[string]string{"a": "1", "b": "2"})
	if a != configFingerprint(map[string]string{"b": "2", "a": "1"}) {
		t.Error("the same config in another order has another fingerprint")
	}
	for _, other := range []map[string]string{{"a": "1"}, {"a": "1", "b": "3"}, {"a": "1=", "b": "2"}, {"a": "1\"b\"=\"2", "": ""}} {
		if configFingerprint(other) == a {
			t.Errorf("%v has the fingerprint of {a:1 b:2}", other)
		}
	}
}

func TestStreamNewCollections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kafka.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := offsets.Open(ctx, kafka.ListenAddrs(), "offsets", offsets.Partitions(1), offsets.ReplicationFactor(1), offsets.Logger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	// orders was there before; invoices is new; refunds is new but its shard 1 has a position
	// already (a listing whose tasks were never recorded, say): it is kept.
	kept, err := offsets.ResumeAt("8263515EAC000000022B0429296E1404")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Commit(ctx, offsets.ShardKey("c", "shop", "refunds", 1, 2), kept); err != nil {
		t.Fatal(err)
	}
	prev := listing{at: bson.Timestamp{T: 1700000000, I: 7}, colls: map[namespace]bool{{"shop", "orders"}: true}}
	nss := []namespace{{"shop", "invoices"}, {"shop", "orders"}, {"shop", "refunds"}}
	if err := streamNewCollections(ctx, store, "c", 2, prev, nss, log); err != nil {
		t.Fatal(err)
	}
	at := offsets.ClusterTime{T: 1700000000, I: 7}
	for _, tc := range []struct {
		key  offsets.Key
		want *offsets.ClusterTime // nil: no offset
		tok  bool                 // the position kept
	}{
		{offsets.ShardKey("c", "shop", "invoices", 0, 2), &at, false},
		{offsets.ShardKey("c", "shop", "invoices", 1, 2), &at, false},
		{offsets.ShardKey("c", "shop", "orders", 0, 2), nil, false},
		{offsets.ShardKey("c", "shop", "refunds", 0, 2), &at, false},
		{offsets.ShardKey("c", "shop", "refunds", 1, 2), kept.ClusterTime, true},
	} {
		v, err := store.Get(tc.key)
		switch {
		case tc.want == nil && err == nil:
			t.Errorf("%s: %+v, want no offset", tc.key, v)
		case tc.want == nil:
		case err != nil:
			t.Errorf("%s: %v, want cluster time %+v", tc.key, err, *tc.want)
		case *v.ClusterTime != *tc.want || (v.ResumeToken != nil) != tc.tok:
			t.Errorf("%s: %+v, want cluster time %+v (token %v)", tc.key, v, *tc.want, tc.tok)
		}
	}
}
