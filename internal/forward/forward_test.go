package forward

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		// local answers in turn, the last one repeated; remote answers likewise.
		local       []error
		remote      []bool // answered
		remoteErr   error
		want        error
		wantNotLead bool
		wantRemotes int
		wantAtLeast int // local calls
		wantResult  string
	}{
		{name: "the leader does it itself", local: []error{nil}, wantResult: "local", wantAtLeast: 1},
		{name: "its own error is the answer", local: []error{boom}, want: boom, wantAtLeast: 1},
		{name: "a follower sends it to the leader", local: []error{&NotLeaderError{"l", "l:8083"}}, remote: []bool{true},
			wantResult: "remote", wantRemotes: 1, wantAtLeast: 1},
		{name: "the leader's error is the answer", local: []error{&NotLeaderError{"l", "l:8083"}}, remote: []bool{false},
			remoteErr: boom, want: boom, wantRemotes: 1, wantAtLeast: 1},
		{name: "an election is waited out", local: []error{&NotLeaderError{}, &NotLeaderError{}, nil},
			wantResult: "local", wantAtLeast: 3},
		{name: "a moved leader is looked for again", local: []error{&NotLeaderError{"l", "l:8083"}}, remote: []bool{false, true},
			wantResult: "remote", wantRemotes: 2, wantAtLeast: 2},
		{name: "no leader within the wait", local: []error{&NotLeaderError{}}, wantNotLead: true, wantAtLeast: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			locals, remotes := 0, 0
			res, err := Do(context.Background(), 250*time.Millisecond,
				func(context.Context) (string, error) {
					e := tt.local[min(locals, len(tt.local)-1)]
					locals++
					if e != nil {
						return "", e
					}
					return "local", nil
				},
				func(_ context.Context, addr string) (string, bool, error) {
					answered := tt.remote[min(remotes, len(tt.remote)-1)]
					remotes++
					if tt.remoteErr != nil {
						return "", false, tt.remoteErr
					}
					if !answered {
						return "", false, nil
					}
					return "remote", true, nil
				})
			if _, nl := errors.AsType[*NotLeaderError](err); nl != tt.wantNotLead {
				t.Errorf("err = %v, want a NotLeaderError: %v", err, tt.wantNotLead)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if res != tt.wantResult {
				t.Errorf("result %q, want %q", res, tt.wantResult)
			}
			if remotes != tt.wantRemotes && !tt.wantNotLead {
				t.Errorf("%d remote calls, want %d", remotes, tt.wantRemotes)
			}
			if locals < tt.wantAtLeast {
				t.Errorf("%d local calls, want at least %d", locals, tt.wantAtLeast)
			}
		})
	}
}

func TestDoStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Do(ctx, time.Hour, func(context.Context) (int, error) { return 0, &NotLeaderError{} },
		func(context.Context, string) (int, bool, error) { return 0, false, nil })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("err = %v after %s, want the context's deadline at once", err, time.Since(start))
	}
}
