// Package forward is the one way a write reaches the leader (DESIGN.md 3): a node tries it
// itself; when it does not lead, the write goes to the leader, one hop; while no leader is
// known (an election) or the leader moved, it is tried again until a deadline. The REST API's
// writes (the HTTP request, proxied whole) and the replicated registry's (a call to the
// leader's node-to-node endpoint) both go through Do.
package forward

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mongorelay/mongorelay/internal/jsonerr"
)

// ErrNotLeader is what every *NotLeaderError is (errors.Is).
var ErrNotLeader = errors.New("not the leader")

// Header marks a request one node forwarded to the leader. A node that gets one and does not
// lead (leadership moved meanwhile) answers 421 instead of forwarding again: one hop only, and
// the first node, which still has the client waiting, tries again.
const Header = "X-Mongorelay-Forwarded"

// IndexHeader carries, on the leader's answer to a forwarded request, the index of the
// cluster state the leader had applied when it answered: the node that forwarded the request
// waits until it has applied that index itself before it answers, so that a caller reads its
// own writes from the node it asked (a GET after a POST through one follower finds the
// connector).
const IndexHeader = "X-Mongorelay-Applied-Index"

// Retry is how often a write that needs the leader looks for one again.
const Retry = 100 * time.Millisecond

// NotLeaderError means only the leader can do it; LeaderHTTP is where the leader's REST API
// is, empty while an election is under way.
type NotLeaderError struct {
	LeaderID   string `json:"leader_id"`
	LeaderHTTP string `json:"leader_http"`
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader, and no leader is known (election under way)"
	}
	return fmt.Sprintf("not the leader: leader is %s at %s", e.LeaderID, e.LeaderHTTP)
}

// Misdirected is the 421 answer of a node that does not lead to a request that had to reach
// the leader: the error in the REST shape, with the leader named for the sender to go there.
type Misdirected struct {
	jsonerr.Body
	NotLeaderError
}

// MisdirectedAnswer is the body of a 421 for nl.
func MisdirectedAnswer(nl *NotLeaderError) Misdirected {
	return Misdirected{Body: jsonerr.Body{Code: http.StatusMisdirectedRequest, Message: nl.Error()}, NotLeaderError: *nl}
}

// Do runs local. When it returns a *NotLeaderError naming a leader, Do sends the write there
// with remote, which reports answered=false when the leader could not be reached or no longer
// leads. Until some answer comes, Do tries again every Retry, for up to wait (or until ctx
// ends), and then returns the last *NotLeaderError: the caller says no leader was reached.
func Do[T any](ctx context.Context, wait time.Duration, local func(context.Context) (T, error),
	remote func(ctx context.Context, leaderHTTP string) (res T, answered bool, err error)) (T, error) {
	deadline := time.Now().Add(wait)
	for {
		res, err := local(ctx)
		nl, ok := errors.AsType[*NotLeaderError](err)
		if !ok {
			return res, err
		}
		if nl.LeaderHTTP != "" {
			res, answered, rerr := remote(ctx, nl.LeaderHTTP)
			if answered || rerr != nil {
				return res, rerr
			}
		}
		if !time.Now().Before(deadline) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("wait for a leader: %w", ctx.Err())
		case <-time.After(Retry):
		}
	}
}
