package tasks

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

// StallAfter is how long a task waits on Kafka, MongoDB or the schema registry before it
// reports itself degraded (Deps.Degraded): far longer than a healthy commit, read or
// registration takes, short enough that its status says so within seconds of an outage.
const StallAfter = 5 * time.Second

// wait is one thing a task waits for that it reports when it stalls.
type wait int

const (
	waitOpen         wait = iota // the transactional producer's initialisation
	waitTxn                      // a transaction's flush and commit (or abort)
	waitOffset                   // an offset commit of the commit loop
	waitRegistry                 // a schema lookup or registration
	waitStreamOpen               // opening the change stream
	waitStreamRead               // the next change stream batch
	waitSnapshotRead             // the next snapshot page (or the collection's split points)
	waitAcks                     // acknowledgements of produced records (counted, not timed)
	nWaits
)

// service is who a task waits for.
type service string

const (
	svcKafka    service = "Kafka"
	svcMongoDB  service = "MongoDB"
	svcRegistry service = "the schema registry"
)

// describe says whom the task waits for and to do what.
func (w wait) describe() (service, string) {
	switch w {
	case waitOpen:
		return svcKafka, "initialise the task's transactional producer (fencing its earlier owners)"
	case waitTxn:
		return svcKafka, "commit the transaction"
	case waitOffset:
		return svcKafka, "commit the offset"
	case waitRegistry:
		return svcRegistry, "look up or register the topic's schemas"
	case waitStreamOpen:
		return svcMongoDB, "open the change stream"
	case waitStreamRead:
		return svcMongoDB, "return the next change stream batch"
	case waitSnapshotRead:
		return svcMongoDB, "return the next snapshot page"
	case waitAcks:
		return svcKafka, "" // watch says how many records
	}
	return "", ""
}

// stalls reports what a task has waited on for longer than StallAfter as the task's degraded
// reason, and clears it once the waits end. begin and end are an atomic store each, cheap
// enough for every transaction and change stream batch; watch builds the reason once a
// second. The zero value and nil are ready to use and report nothing.
type stalls struct {
	since [nWaits]atomic.Int64 // Unix nanoseconds when a wait began, 0 when not waiting
	// grace is how much longer than after a wait may take and still be healthy: a change
	// stream read of an idle stream is held by the server for poll.max.wait.ms.
	grace [nWaits]time.Duration

	// after and tick are StallAfter and how often watch looks (shorter in tests).
	after, tick time.Duration
	report      func(string)
	// pending counts the records produced and not yet acknowledged, and those acknowledged
	// so far (nil: none are tracked).
	pending func() (pending int, acked int64)
	// kafkaErrs and mongoErrs are the last errors met reaching either (nil: unknown).
	kafkaErrs, mongoErrs *LastError
}

func (s *stalls) begin(w wait) {
	if s != nil {
		s.since[w].Store(time.Now().UnixNano())
	}
}

func (s *stalls) end(w wait) {
	if s != nil {
		s.since[w].Store(0)
	}
}

// kafkaErrors is where the task's Kafka clients record their last error, nil for none.
func (s *stalls) kafkaErrors() *LastError {
	if s == nil {
		return nil
	}
	return s.kafkaErrs
}

// waited is how long the wait w in progress has lasted, 0 when none is.
func (s *stalls) waited(w wait, now time.Time) time.Duration {
	if s == nil {
		return 0
	}
	began := s.since[w].Load()
	if began == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, began))
}

// watch reports the task's stalls until ctx ends. It leaves the last reason as it is: the
// run is over, and the runner forgets it with the run. It returns at once when there is
// nobody to report to.
func (s *stalls) watch(ctx context.Context) (err error) {
	if s == nil || s.report == nil {
		return nil
	}
	defer connector.Recover(&err)
	after, tick := s.after, s.tick
	if after <= 0 {
		after = StallAfter
	}
	if tick <= 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var shown string
	var acked int64
	var ackedAt time.Time // when the acknowledged count last moved, or nothing was pending
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			var stalled []string
			var services []service
			add := func(w wait, waited time.Duration, what string) {
				svc, _ := w.describe()
				stalled = append(stalled, fmt.Sprintf("waiting %s for %s to %s", waited.Round(time.Second), svc, what))
				if !slices.Contains(services, svc) {
					services = append(services, svc)
				}
			}
			for w := range waitAcks {
				if d := s.waited(w, now); d >= after+s.grace[w] {
					_, what := w.describe()
					add(w, d, what)
				}
			}
			if s.pending != nil {
				n, a := s.pending()
				if n == 0 || a != acked || ackedAt.IsZero() {
					acked, ackedAt = a, now
				} else if d := now.Sub(ackedAt); d >= after {
					add(waitAcks, d, fmt.Sprintf("acknowledge %d record(s) produced", n))
				}
			}
			reason := strings.Join(stalled, "; ")
			for _, svc := range services {
				var last *LastError
				switch svc {
				case svcKafka:
					last = s.kafkaErrs
				case svcMongoDB:
					last = s.mongoErrs
				}
				if e := last.describe(now); e != "" {
					reason += fmt.Sprintf("; last %s error %s", svc, e)
				}
			}
			if reason != shown {
				s.report(reason)
				shown = reason
			}
		}
	}
}

// LastError keeps the last error a client met reaching its servers, and when: a degraded
// reason quotes it. Safe for concurrent use; nil keeps nothing.
type LastError struct {
	mu  sync.Mutex
	err string
	at  time.Time
}

// Set records err, if it is one.
func (l *LastError) Set(err error) {
	if l == nil || err == nil {
		return
	}
	l.mu.Lock()
	l.err, l.at = err.Error(), time.Now()
	l.mu.Unlock()
}

// describe says how long ago the last error was and what it said, "" when there was none.
func (l *LastError) describe(now time.Time) string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == "" {
		return ""
	}
	return fmt.Sprintf("%s ago: %s", now.Sub(l.at).Round(time.Second), l.err)
}

// brokerErrors records a Kafka client's failures to reach its brokers (a kgo hook).
type brokerErrors struct{ last *LastError }

var (
	_ kgo.HookBrokerConnect = brokerErrors{}
	_ kgo.HookBrokerWrite   = brokerErrors{}
	_ kgo.HookBrokerRead    = brokerErrors{}
)

func (b brokerErrors) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	b.last.Set(err)
}

func (b brokerErrors) OnBrokerWrite(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	b.last.Set(err)
}

func (b brokerErrors) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	b.last.Set(err)
}
