package kafkastore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
	"github.com/mongorelay/mongorelay/registry/kafkastore"
)

func TestStampKeyIsNoRegistryKey(t *testing.T) {
	k := kafkastore.StampKey("a", "s")
	if string(k) != `{"keytype":"CLUSTER","cluster_id":"a","stamp":"s","magic":0}` {
		t.Errorf("StampKey(a, s) = %s", k)
	}
	if id, ok := kafkastore.StampCluster(k); !ok || id != "a" {
		t.Errorf("StampCluster(%s) = %q, %v", k, id, ok)
	}
	for _, k := range []string{`{"keytype":"MAX_ID","magic":0}`, `{"keytype":"CLUSTER","cluster_id":"a","stamp":"s","magic":0,"x":1}`, `{"keytype":"CLUSTER", "cluster_id":"a","stamp":"s","magic":0}`} {
		if _, ok := kafkastore.StampCluster([]byte(k)); ok {
			t.Errorf("StampCluster(%s) took it for a stamp", k)
		}
	}
}

func TestSchemasTopicIsStampedWithItsCluster(t *testing.T) {
	ctx := testContext(t)
	brokers := newCluster(t)

	// A topic written by a version that did not stamp is adopted, its ids kept.
	r, store := open(t, ctx, brokers, "schemas")
	ids := history(t, ctx, r)
	store.Close()
	r, store = open(t, ctx, brokers, "schemas", kafkastore.ClusterID("a"))
	checkHistory(t, ctx, r, ids)
	store.Close()

	// The same cluster reopens it, the stamp skipped by the replay.
	r, store = open(t, ctx, brokers, "schemas", kafkastore.ClusterID("a"))
	checkHistory(t, ctx, r, ids)
	if _, err := r.Register(ctx, "new-value", other); err != nil {
		t.Fatal(err)
	}
	store.Close()

	// Another cluster is refused.
	_, err := kafkastore.Open(ctx, kafkastore.ClientOpts(kgo.SeedBrokers(brokers...)),
		kafkastore.Topic("schemas"), kafkastore.Logger(quiet), kafkastore.ClusterID("b"))
	refused, ok := errors.AsType[*kafkatopic.OtherClusterError](err)
	if !ok || refused.Owner != "a" || refused.Ours != "b" {
		t.Fatalf("Open as b: err = %v, want the topic refused as cluster a's", err)
	}
	for _, want := range []string{`"a"`, `"b"`, "set schemas.topic", "schemas-b"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// A new topic is stamped at once.
	_, store = open(t, ctx, brokers, "schemas-b", kafkastore.ClusterID("b"))
	store.Close()
	if _, err := kafkastore.Open(ctx, kafkastore.ClientOpts(kgo.SeedBrokers(brokers...)),
		kafkastore.Topic("schemas-b"), kafkastore.Logger(quiet), kafkastore.ClusterID("a")); err == nil {
		t.Error("cluster a opened the schemas topic cluster b stamped")
	}
}
