package tasks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// reasons collects what a task reports as degraded.
type reasons struct {
	mu  sync.Mutex
	all []string
}

func (r *reasons) report(s string) { r.mu.Lock(); r.all = append(r.all, s); r.mu.Unlock() }

func (r *reasons) last() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.all) == 0 {
		return "", 0
	}
	return r.all[len(r.all)-1], len(r.all)
}

func watchStalls(t *testing.T, s *stalls) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func waitForReason(t *testing.T, r *reasons, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		last, _ := r.last()
		if ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last reported %q", what, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStallsReportAWaitOnKafkaThatLastsWithTheLastBrokerError(t *testing.T) {
	r := &reasons{}
	s := &stalls{after: 50 * time.Millisecond, tick: 5 * time.Millisecond, report: r.report, kafkaErrs: &LastError{}}
	watchStalls(t, s)

	s.begin(waitTxn)
	s.end(waitTxn) // a commit that took no time: nothing to say
	s.kafkaErrs.Set(errors.New("dial tcp 127.0.0.1:19092: connect: connection refused"))
	s.begin(waitTxn)
	got := waitForReason(t, r, "a stalled commit reported", func(s string) bool { return s != "" })
	for _, want := range []string{"for Kafka to commit the transaction", "last Kafka error", "connection refused"} {
		if !strings.Contains(got, want) {
			t.Errorf("reason %q does not say %q", got, want)
		}
	}
	s.end(waitTxn)
	waitForReason(t, r, "the reason cleared", func(s string) bool { return s == "" })
}

func TestStallsGiveAnIdleChangeStreamItsPollWait(t *testing.T) {
	r := &reasons{}
	s := &stalls{after: 30 * time.Millisecond, tick: 5 * time.Millisecond, report: r.report}
	s.grace[waitStreamRead] = 200 * time.Millisecond
	watchStalls(t, s)

	s.begin(waitStreamRead)
	time.Sleep(100 * time.Millisecond)
	if last, n := r.last(); n != 0 {
		t.Fatalf("a read within poll.max.wait.ms reported %q", last)
	}
	got := waitForReason(t, r, "a stalled read reported", func(s string) bool { return s != "" })
	if !strings.Contains(got, "for MongoDB to return the next change stream batch") || strings.Contains(got, "last MongoDB error") {
		t.Errorf("reason %q", got)
	}
}

func TestStallsReportRecordsKafkaDoesNotAcknowledge(t *testing.T) {
	r := &reasons{}
	var mu sync.Mutex
	pending, acked := 0, int64(0)
	s := &stalls{after: 300 * time.Millisecond, tick: 5 * time.Millisecond, report: r.report,
		pending: func() (int, int64) { mu.Lock(); defer mu.Unlock(); return pending, acked }}
	watchStalls(t, s)

	set := func(p int, a int64) { mu.Lock(); pending, acked = p, a; mu.Unlock() }
	for i := range 50 { // acks moving on: healthy, however many are pending
		set(500, int64(i))
		time.Sleep(10 * time.Millisecond)
	}
	if last, n := r.last(); n != 0 {
		t.Fatalf("moving acks reported %q", last)
	}
	got := waitForReason(t, r, "stuck acks reported", func(s string) bool { return s != "" })
	if !strings.Contains(got, "for Kafka to acknowledge 500 record(s) produced") {
		t.Errorf("reason %q", got)
	}
	set(0, 520)
	waitForReason(t, r, "the reason cleared", func(s string) bool { return s == "" })
}
