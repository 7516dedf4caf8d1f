package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"version", []string{"version"}, 0, "mongorelay dev (commit unknown, go", ""},
		{"help", []string{"help"}, 0, "usage: mongorelay", ""},
		{"no command", nil, exitUsage, "", "usage: mongorelay"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"standalone --help", []string{"standalone", "--help"}, 0, "", "usage: mongorelay standalone"},
		{"worker --help", []string{"worker", "--help"}, 0, "", "usage: mongorelay worker"},
		{"worker leave -h", []string{"worker", "leave", "-h"}, 0, "", "usage: mongorelay worker leave"},
		{"consume --help", []string{"consume", "--help"}, 0, "", "usage: mongorelay consume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
			if n := strings.Count(stdout.String()+stderr.String(), "usage: mongorelay"); tt.wantCode == 0 && n > 1 {
				t.Errorf("the usage is printed %d times, want once:\n%s%s", n, stdout.String(), stderr.String())
			}
			if strings.Contains(stderr.String(), "help requested") {
				t.Errorf("stderr = %q: --help is no error", stderr.String())
			}
		})
	}
}
