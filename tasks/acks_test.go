package tasks

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/tasks/connector"
)

func TestAckTrackerCommitsInProductionOrder(t *testing.T) {
	tr := newAckTracker[int](nil)
	g1, g2, g3 := tr.Open(), tr.Open(), tr.Open()
	for _, g := range []*ackGroup[int]{g1, g2, g3} {
		g.Add()
		g.Add()
	}
	g1.Seal(1)
	g2.Seal(2)
	g3.Seal(3)

	steps := []struct {
		name   string
		ack    *ackGroup[int]
		wantCP int
		wantOK bool
	}{
		{"later group acked first", g3, 0, false},
		{"later group complete", g3, 0, false},
		{"first group half acked", g1, 0, false},
		{"first group complete", g1, 1, true},
		{"second group half acked", g2, 0, false},
		{"second group complete releases the third too", g2, 3, true},
	}
	for _, s := range steps {
		s.ack.Promise()(nil, nil)
		cp, ok, err := tr.Committable()
		if err != nil || ok != s.wantOK || cp != s.wantCP {
			t.Fatalf("%s: Committable() = %d, %v, %v; want %d, %v, nil", s.name, cp, ok, err, s.wantCP, s.wantOK)
		}
	}
	if n := tr.Outstanding(); n != 0 {
		t.Fatalf("Outstanding() = %d after every group completed, want 0", n)
	}
}

func TestAckTrackerWithholdsCheckpointsAfterAnError(t *testing.T) {
	tr := newAckTracker[int](nil)
	g := tr.Open()
	g.Add()
	g.Add()
	g.Seal(7)
	boom := errors.New("boom")
	g.Promise()(nil, boom)
	g.Promise()(nil, nil)
	if _, ok, err := tr.Committable(); ok || !errors.Is(err, boom) {
		t.Fatalf("Committable() = ok %v, err %v; want no checkpoint and %v", ok, err, boom)
	}
}

func TestAckTrackerIgnoresRecordsOfItsOwnAbort(t *testing.T) {
	tr := newAckTracker[int](nil)
	g1, g2 := tr.Open(), tr.Open()
	g1.Add()
	g1.Seal(1)
	g1.Promise()(nil, nil)
	g2.Add()
	g2.SealEmpty() // its transaction is being aborted
	g2.Promise()(nil, kgo.ErrAborting)
	if cp, ok, err := tr.Committable(); !ok || cp != 1 || err != nil {
		t.Fatalf("Committable() = %d, %v, %v; want 1, true, nil", cp, ok, err)
	}
}

func TestAckTrackerEmptyGroupIsImmediatelyCommittable(t *testing.T) {
	// An idle change stream still advances its post-batch resume token: a group with no
	// records carries it and must not wait for anything but earlier groups.
	tr := newAckTracker[int](nil)
	g := tr.Open()
	g.Seal(5)
	select {
	case <-tr.Ready():
	default:
		t.Fatal("sealing an empty group did not signal Ready")
	}
	if cp, ok, _ := tr.Committable(); !ok || cp != 5 {
		t.Fatalf("Committable() = %d, %v; want 5, true", cp, ok)
	}
}

func TestAckTrackerEmptyGroupsDoNotHideCheckpoints(t *testing.T) {
	tr := newAckTracker[int](nil)
	g1, g2 := tr.Open(), tr.Open()
	g1.Add()
	g1.Seal(1)
	g2.SealEmpty()
	g1.Promise()(nil, nil)
	if cp, ok, _ := tr.Committable(); !ok || cp != 1 {
		t.Fatalf("Committable() = %d, %v; want 1, true", cp, ok)
	}
	if tr.Pending() != 0 || tr.Outstanding() != 0 {
		t.Fatalf("Pending() = %d, Outstanding() = %d; want 0, 0", tr.Pending(), tr.Outstanding())
	}
}

func TestAckTrackerConcurrentAcks(t *testing.T) {
	const groups, perGroup = 200, 50
	tr := newAckTracker[int](nil)
	var wg sync.WaitGroup
	for i := 1; i <= groups; i++ {
		g := tr.Open()
		for j := 0; j < perGroup; j++ {
			g.Add()
		}
		g.Seal(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perGroup; j++ {
				g.Promise()(nil, nil)
			}
		}()
	}
	wg.Wait()
	if cp, ok, err := tr.Committable(); !ok || err != nil || cp != groups {
		t.Fatalf("Committable() = %d, %v, %v; want %d, true, nil", cp, ok, err, groups)
	}
}

func TestAckTrackerReusesGroups(t *testing.T) {
	tr := newAckTracker[int](nil)
	allocs := testing.AllocsPerRun(100, func() {
		g := tr.Open()
		g.Add()
		g.Seal(1)
		g.Promise()(nil, nil)
		<-tr.Ready()
		if _, ok, _ := tr.Committable(); !ok {
			t.Fatal("no checkpoint")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per group in steady state, want 0", allocs)
	}
}

func TestAckTrackerTurnsAPanicOfItsPromiseIntoItsError(t *testing.T) {
	tr := newAckTracker[int](func(*kgo.Record) { panic("recycled twice") })
	g := tr.Open()
	g.Add()
	g.Seal(1)
	g.Promise()(&kgo.Record{}, nil) // in the producer's goroutine, this would end the process
	if _, ok, err := tr.Committable(); ok || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "recycled twice") {
		t.Fatalf("Committable() = ok %v, err %v; want no checkpoint and the panic as a permanent error", ok, err)
	}
}
