package main

import (
	"context"

	"github.com/mongorelay/mongorelay/internal/proc"
	"github.com/mongorelay/mongorelay/internal/testservers"
)

// startServers starts the Kafka broker and MongoDB stand-in every system of the run reads and
// writes, private to the run (own ports, own data under the work directory): other engineers'
// tests on the shared environment neither disturb the figures nor get disturbed, and each run
// starts from empty servers.
func startServers(ctx context.Context, cfg *config, reg *proc.Registry) (*testservers.Servers, error) {
	return testservers.Start(ctx, testservers.Config{
		Root: cfg.root, Work: cfg.work,
		KafkaHeap: cfg.kafkaHeap, StandinHeap: cfg.standinHeap, OplogEntries: cfg.oplogEntries,
		Logf: logf,
	}, reg)
}
