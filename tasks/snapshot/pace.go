package snapshot

import (
	"context"
	"time"
)

// Pace holds a copy to a rate: after each page, Wait sleeps until the documents copied so far
// are no more than rate times the time since the Pace was made. The budget is not saved up
// across a slow stretch beyond one second, so a stall is not followed by a burst that would
// hit the primary harder than the rate promises.
type Pace struct {
	rate  float64 // documents per second; 0: no limit
	start time.Time
	n     float64 // documents counted since start

	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

// NewPace returns a Pace of perSecond documents per second, counted from now (so the first
// page is paced too); 0 or less paces nothing.
func NewPace(perSecond int) *Pace { return newPace(perSecond, time.Now, sleepCtx) }

func newPace(perSecond int, now func() time.Time, sleep func(context.Context, time.Duration) error) *Pace {
	return &Pace{rate: float64(perSecond), start: now(), now: now, sleep: sleep}
}

// Wait counts n more documents and returns once copying them kept to the rate, or with ctx's
// error when ctx ends first.
func (p *Pace) Wait(ctx context.Context, n int) error {
	if p.rate <= 0 || n <= 0 {
		return nil
	}
	now := p.now()
	// Forget budget older than a second: copying at half the rate for a minute must not
	// allow a minute's worth of documents at once afterwards.
	if behind := now.Sub(p.start).Seconds() - p.n/p.rate; behind > 1 {
		p.start = p.start.Add(time.Duration((behind - 1) * float64(time.Second)))
	}
	p.n += float64(n)
	due := p.start.Add(time.Duration(p.n / p.rate * float64(time.Second)))
	if d := due.Sub(now); d > 0 {
		return p.sleep(ctx, d)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
