package snapshot

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeClock advances only when the pace sleeps, so the test checks the arithmetic, not timing.
type fakeClock struct {
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
	return nil
}

func TestPace(t *testing.T) {
	type step struct {
		work time.Duration // time spent copying the page, before Wait
		docs int
		want time.Duration // how long Wait sleeps
	}
	tests := []struct {
		name  string
		rate  int
		steps []step
	}{
		{"no limit", 0, []step{{0, 1000, 0}, {0, 1 << 20, 0}}},
		{"fast pages wait for the rate", 1000, []step{
			{0, 100, 100 * time.Millisecond},
			{10 * time.Millisecond, 100, 90 * time.Millisecond},
			{0, 500, 500 * time.Millisecond},
		}},
		{"the first page counts from the start", 1000, []step{
			{40 * time.Millisecond, 100, 60 * time.Millisecond},
		}},
		{"a slow page needs no wait", 1000, []step{
			{0, 100, 100 * time.Millisecond},
			{300 * time.Millisecond, 100, 0},
			// 200 ms of budget left from the slow page: 300 documents are due 100 ms from now.
			{0, 300, 100 * time.Millisecond},
		}},
		{"a stall saves up at most a second", 1000, []step{
			{0, 100, 100 * time.Millisecond},
			{time.Minute, 100, 0},
			{0, 900, 0},                      // the second saved, less the 100 documents it came with
			{0, 500, 500 * time.Millisecond}, // and no more
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			p := newPace(tt.rate, clock.now, clock.sleep)
			for i, s := range tt.steps {
				clock.t = clock.t.Add(s.work)
				clock.slept = nil
				if err := p.Wait(context.Background(), s.docs); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				var slept time.Duration
				for _, d := range clock.slept {
					slept += d
				}
				if slept != s.want {
					t.Errorf("step %d: slept %v, want %v", i, slept, s.want)
				}
			}
		})
	}
}

func TestPaceStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewPace(1).Wait(ctx, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context = %v, want context.Canceled", err)
	}
}
