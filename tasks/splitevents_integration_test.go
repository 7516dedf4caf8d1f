package tasks_test

import (
	"strings"
	"testing"
	"time"
)

// The stand-in refuses $changeStreamSplitLargeEvent (deploy/local/README.md), so a task sent
// there with SplitLargeEvents fails on the stage: proof that the stage reaches the server when
// the deployment is said to have it, and only then.
func TestATaskSendsTheSplitStageOnlyWhenTheServerHasIt(t *testing.T) {
	t.Run("without", func(t *testing.T) {
		e := newEnv(t)
		r := e.run(e.connector(map[string]string{"snapshot.mode": "never"}), "docs", 0, 1, "test")
		if err, exited := r.exited(time.Second); exited {
			t.Fatalf("the task ended: %v", err)
		}
		if err := r.stop(); err != nil {
			t.Fatalf("clean stop: %v", err)
		}
	})
	t.Run("with", func(t *testing.T) {
		e := newEnv(t)
		e.splitLargeEvents = true
		r := e.run(e.connector(map[string]string{"snapshot.mode": "never"}), "docs", 0, 1, "test")
		err, exited := r.exited(20 * time.Second)
		if !exited {
			_ = r.stop()
			t.Fatal("the task kept running on a server that refuses the stage")
		}
		if err == nil || !strings.Contains(err.Error(), "$changeStreamSplitLargeEvent is not supported by mongo-standin") {
			t.Fatalf("Run() = %v, want the stand-in's refusal of $changeStreamSplitLargeEvent", err)
		}
	})
}
