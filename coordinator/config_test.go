package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{NodeID: "n1", DataDir: "/tmp/x", RaftListen: "127.0.0.1:0", Expand: testExpand}
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no node id", func(c *Config) { c.NodeID = "" }, "node id is required"},
		{"no expand", func(c *Config) { c.Expand = nil }, "expand function"},
		{"lease not below session", func(c *Config) { c.Lease, c.SessionTimeout = 6*time.Second, 6*time.Second }, "must be shorter than session timeout"},
		{"heartbeat not below lease", func(c *Config) { c.HeartbeatInterval = 5 * time.Second }, "must be shorter than lease"},
		{"removal before session timeout", func(c *Config) { c.DeadNodeRemoval = time.Second }, "dead node removal"},
		{"removal disabled", func(c *Config) { c.DeadNodeRemoval = -1 }, ""},
		{"bad advertise", func(c *Config) { c.RaftAdvertise = "nohost" }, "raft advertise"},
		{"duplicate peer", func(c *Config) { c.Peers = []Peer{{ID: "a", RaftAddr: "x:1"}, {ID: "a", RaftAddr: "y:1"}} }, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			c.setDefaults()
			err := c.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err %v, want it to mention %q", err, tt.want)
			}
		})
	}
	c := valid()
	c.setDefaults()
	if c.Voters != 3 || c.HeartbeatInterval != 500*time.Millisecond || c.SessionTimeout != 5*time.Second ||
		c.Lease != 4*time.Second || c.DeadNodeRemoval != 10*time.Minute || c.ExpandInterval != 10*time.Second {
		t.Fatalf("defaults %+v", c)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	if _, err := Open(context.Background(), Config{NodeID: "n1"}); err == nil {
		t.Fatal("Open accepted a config without a data dir")
	}
}
