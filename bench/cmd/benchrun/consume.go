package main

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/bench/internal/workload"
)

// counter reads a topic from its start with read_committed, as a downstream consumer would,
// and notes when the first record and the expected-th record became readable. Tombstones are
// not counted (every system is configured without them). It also collects the latency marker
// of each record and notices probes.
type counter struct {
	cl       *kgo.Client
	expected int64
	latency  bool

	mu        sync.Mutex
	n         int64
	bytes     int64
	first     time.Time
	last      time.Time
	samples   []latencySample
	probeSeen bool

	reached chan struct{} // closed when n reaches expected
	probed  chan struct{} // closed at the first probe
	stopped chan struct{}
	cancel  context.CancelFunc
}

type latencySample struct{ sent, received time.Time }

// newCounter starts counting topic of b.
func newCounter(b *broker, topic string, expected int64, latency bool) (*counter, error) {
	return newCounterOf(b, expected, latency, kgo.ConsumeTopics(topic))
}

// newCounterOf starts counting the topics of b that consume names.
func newCounterOf(b *broker, expected int64, latency bool, consume ...kgo.Opt) (*counter, error) {
	cl, err := kgo.NewClient(b.clientOpts(append(consume,
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond))...)...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &counter{cl: cl, expected: expected, latency: latency, cancel: cancel,
		reached: make(chan struct{}), probed: make(chan struct{}), stopped: make(chan struct{})}
	go c.loop(ctx)
	return c, nil
}

var probeBytes = []byte(probeMarker)

func (c *counter) loop(ctx context.Context) {
	defer close(c.stopped)
	for ctx.Err() == nil {
		fetches := c.cl.PollFetches(ctx)
		now := time.Now()
		c.mu.Lock()
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				return
			}
			if bytes.Contains(r.Value, probeBytes) {
				if !c.probeSeen {
					c.probeSeen = true
					close(c.probed)
				}
				return
			}
			if c.latency {
				sent, ok := workload.FindLatencyMarker(r.Value)
				if !ok {
					return
				}
				c.samples = append(c.samples, latencySample{sent, now})
			}
			c.n++
			c.bytes += int64(len(r.Key) + len(r.Value))
			if c.n == 1 {
				c.first = now
			}
			if c.n == c.expected {
				c.last = now
				close(c.reached)
			}
		})
		c.mu.Unlock()
	}
}

// snapshot returns what was counted so far.
func (c *counter) snapshot() (n, bytes int64, first, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.bytes, c.first, c.last
}

func (c *counter) latencies() []latencySample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]latencySample(nil), c.samples...)
}

func (c *counter) close() {
	c.cancel()
	<-c.stopped
	c.cl.Close()
}
