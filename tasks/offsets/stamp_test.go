package offsets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkatopic"
)

func TestStampKeyIsNeverAnOffsetKey(t *testing.T) {
	for _, id := range []string{"mongorelay", "a", `we"ird\id`, "é\u2028", ""} {
		k := StampKey(id, "0123456789abcdef")
		if _, err := ParseKey(k); err == nil {
			t.Errorf("ParseKey(%s) accepted a stamp key", k)
		}
		if got, ok := StampCluster(k); !ok || got != id {
			t.Errorf("StampCluster(%s) = %q, %v; want %q, true", k, got, ok, id)
		}
	}
	for _, k := range [][]byte{
		ShardKey("mongorelay.cluster", "db", "c", 0, 1).Bytes(),
		[]byte(`["mongorelay.cluster",{"cluster_id": "a","stamp":"s"}]`), // not canonical
		[]byte(`["mongorelay.cluster",{"cluster_id":"a","stamp":"s","x":1}]`),
		nil,
	} {
		if id, ok := StampCluster(k); ok {
			t.Errorf("StampCluster(%s) = %q, true; want not a stamp", k, id)
		}
	}
}

// stamps returns the cluster ids of the stamps in partition 0 of the topic, in order.
func stamps(t *testing.T, brokers []string, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := adminFor(t, brokers).ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var ids []string
	for next := int64(0); next < end.Offset; {
		fs := cl.PollFetches(testCtx(t))
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if id, ok := StampCluster(r.Key); ok {
				ids = append(ids, id)
			}
		})
	}
	return ids
}

func TestOpenStampsTheTopicWithItsCluster(t *testing.T) {
	k := ShardKey("cdc", "shop", "orders", 0, 1)
	for _, tc := range []struct {
		name string
		// before opens the topic as earlier nodes did; "" opens without a cluster id, as a
		// version that did not stamp.
		before []string
		id     string
		// owner is the cluster refusing id; "" means id opens the topic.
		owner  string
		stamps []string
	}{
		{name: "a new topic is stamped", id: "a", stamps: []string{"a"}},
		{name: "the same id reopens it", before: []string{"a"}, id: "a", stamps: []string{"a"}},
		{name: "another id is refused", before: []string{"a"}, id: "b", owner: "a", stamps: []string{"a"}},
		{name: "an unstamped topic is adopted", before: []string{""}, id: "a", stamps: []string{"a"}},
		{name: "an adopted topic refuses another id", before: []string{"", "a"}, id: "b", owner: "a", stamps: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, brokers := newCluster(t)
			for _, id := range tc.before {
				s, err := Open(testCtx(t), brokers, testTopic, quiet, ClusterID(id))
				if err != nil {
					t.Fatalf("Open as %q: %v", id, err)
				}
				if err := s.Commit(testCtx(t), k, at(t, tokInsert)); err != nil {
					t.Fatal(err)
				}
				s.Close()
			}
			s, err := Open(testCtx(t), brokers, testTopic, quiet, ClusterID(tc.id))
			if tc.owner == "" {
				if err != nil {
					t.Fatalf("Open as %q: %v", tc.id, err)
				}
				defer s.Close()
				if len(tc.before) > 0 {
					mustGet(t, s, k)
				}
			} else {
				other, ok := errors.AsType[*kafkatopic.OtherClusterError](err)
				if !ok {
					t.Fatalf("Open as %q: err = %v, want an OtherClusterError", tc.id, err)
				}
				if other.Owner != tc.owner || other.Ours != tc.id {
					t.Errorf("owner, ours = %q, %q; want %q, %q", other.Owner, other.Ours, tc.owner, tc.id)
				}
				for _, want := range []string{testTopic, fmt.Sprintf("%q", tc.owner), fmt.Sprintf("%q", tc.id),
					"set offsets.topic", testTopic + "-" + tc.id} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
			}
			if got := stamps(t, brokers, testTopic); !slices.Equal(got, tc.stamps) {
				t.Errorf("stamps = %q, want %q", got, tc.stamps)
			}
		})
	}
}

func TestTwoClustersRacingForATopicExactlyOneWins(t *testing.T) {
	_, brokers := newCluster(t)
	for round := range 5 {
		topic := fmt.Sprintf("offsets-race-%d", round)
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		for i, id := range []string{"a", "b"} {
			wg.Go(func() {
				s, err := Open(testCtx(t), brokers, topic, quiet, Partitions(3), ClusterID(id))
				errs[i] = err
				if err == nil {
					s.Close()
				}
			})
		}
		wg.Wait()
		var won, refused int
		for _, err := range errs {
			if _, ok := errors.AsType[*kafkatopic.OtherClusterError](err); ok {
				refused++
			} else if err == nil {
				won++
			} else {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 || refused != 1 {
			t.Errorf("round %d: %d opened and %d were refused (%v); want one of each", round, won, refused, errs)
		}
	}
}

func TestStampsAreNotOffsets(t *testing.T) {
	_, brokers := newCluster(t)
	var logs bytes.Buffer
	s := open(t, brokers, ClusterID("a"))
	k := ShardKey("cdc", "shop", "orders", 0, 1)
	if err := s.Commit(testCtx(t), k, at(t, tokInsert)); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(testCtx(t), brokers, testTopic, ClusterID("a"), Logger(slogTo(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, st := range []*Store{s, s2} {
		if got := st.List(stampConnector); len(got) != 0 {
			t.Errorf("List(%q) = %v, want nothing", stampConnector, got)
		}
		st.mu.RLock()
		n := len(st.offsets)
		st.mu.RUnlock()
		if n != 1 {
			t.Errorf("the store holds %d keys, want 1 (the offset, not the stamp)", n)
		}
	}
	if strings.Contains(logs.String(), "ignoring") {
		t.Errorf("loading warned about the stamp:\n%s", logs.String())
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
