package main

import "testing"

func TestTheHealthcheckCallsTheNodesOwnListenerOnLoopback(t *testing.T) {
	tests := []struct {
		listen string
		tls    bool
		want   string
	}{
		{"", false, "127.0.0.1:8083"},
		{":9083", false, "127.0.0.1:9083"},
		{"0.0.0.0:8083", true, "https://127.0.0.1:8083"},
		{"10.0.0.7:8090", false, "127.0.0.1:8090"},
		{"[::]:8083", true, "https://127.0.0.1:8083"},
		{"not an address", false, "127.0.0.1:8083"},
	}
	for _, tt := range tests {
		if got := defaultHealthAddr(tt.listen, tt.tls); got != tt.want {
			t.Errorf("defaultHealthAddr(%q, %v) = %q, want %q", tt.listen, tt.tls, got, tt.want)
		}
	}
}
