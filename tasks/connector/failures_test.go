package connector

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFenced(t *testing.T) {
	base := errors.New("PRODUCER_FENCED")
	err := fmt.Errorf("commit transaction: %w", Fenced(base))
	if !IsFenced(err) || !errors.Is(err, base) || IsPermanent(err) || err.Error() != "commit transaction: PRODUCER_FENCED" {
		t.Errorf("Fenced wrapped: %v (fenced %v, permanent %v)", err, IsFenced(err), IsPermanent(err))
	}
	if IsFenced(base) || Fenced(nil) != nil {
		t.Error("an unmarked error is fenced, or Fenced(nil) is not nil")
	}
}

func TestRecoverTurnsAPanicOfAGoroutineIntoAPermanentError(t *testing.T) {
	var err error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer Recover(&err)
		var m map[string]int
		m["poison"]++
	})
	wg.Wait()
	pe, ok := errors.AsType[*PanicError](err)
	if !ok || !IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent *PanicError", err)
	}
	for _, want := range []string{"task panicked: assignment to entry in nil map", "FAILED rather than restarted", "failures_test.go"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("panic error lacks %q:\n%s", want, err)
		}
	}
	if !strings.Contains(string(pe.Stack), "TestRecoverTurnsAPanicOfAGoroutineIntoAPermanentError") {
		t.Errorf("the stack is not where the panic happened:\n%s", pe.Stack)
	}

	err = nil
	func() { defer Recover(&err) }()
	if err != nil {
		t.Errorf("no panic, yet err = %v", err)
	}
}

func TestParseRetry(t *testing.T) {
	tests := []struct {
		config map[string]string
		want   Retry
		bad    string // the key named by a problem, "" for none
	}{
		{nil, Retry{Timeout: -time.Millisecond, DelayMax: 10 * time.Second}, ""},
		{map[string]string{RetryTimeoutKey: "0", RetryDelayMaxKey: "2500"}, Retry{Timeout: 0, DelayMax: 2500 * time.Millisecond}, ""},
		{map[string]string{RetryTimeoutKey: " 600000 "}, Retry{Timeout: 10 * time.Minute, DelayMax: 10 * time.Second}, ""},
		{map[string]string{RetryTimeoutKey: "-2"}, Retry{Timeout: -time.Millisecond, DelayMax: 10 * time.Second}, RetryTimeoutKey},
		{map[string]string{RetryTimeoutKey: "10s"}, Retry{Timeout: -time.Millisecond, DelayMax: 10 * time.Second}, RetryTimeoutKey},
		{map[string]string{RetryDelayMaxKey: "0"}, Retry{Timeout: -time.Millisecond, DelayMax: 10 * time.Second}, RetryDelayMaxKey},
		{map[string]string{RetryDelayMaxKey: "3600001"}, Retry{Timeout: -time.Millisecond, DelayMax: 10 * time.Second}, RetryDelayMaxKey},
	}
	for _, tt := range tests {
		got, problems := ParseRetry(tt.config)
		if got != tt.want {
			t.Errorf("ParseRetry(%v) = %+v, want %+v", tt.config, got, tt.want)
		}
		switch {
		case tt.bad == "" && len(problems) > 0:
			t.Errorf("ParseRetry(%v): problems %v", tt.config, problems)
		case tt.bad != "" && (len(problems) != 1 || problems[0].Key != tt.bad || !strings.Contains(problems[0].Message, "use ")):
			t.Errorf("ParseRetry(%v): problems %v, want one naming %s and its fix", tt.config, problems, tt.bad)
		}
	}
}
