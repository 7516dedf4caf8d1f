package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mongorelay/mongorelay/internal/kafkaconn"
	"github.com/mongorelay/mongorelay/registry"
	"github.com/mongorelay/mongorelay/registry/client"
	"github.com/mongorelay/mongorelay/worker"
)

// runConsume prints the records of topics as JSON lines, keys and values decoded through the
// schema registry, for people watching a connector and for tests.
func runConsume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mongorelay consume [flags] <topic> [topic...]")
		fs.PrintDefaults()
	}
	registryURL := fs.String("registry", "http://127.0.0.1:8081", "schema registry URL")
	fromEnd := fs.Bool("from-end", false, "print only records that arrive from now on")
	maxRecords := fs.Int("max", 0, "stop after this many records (0: no limit)")
	idle := fs.Duration("idle", 0, "stop after this long without a record (0: wait for Ctrl-C)")
	// The same Kafka keys as the worker's, flags and MONGORELAY_* variables.
	cfg, topics, err := worker.ParseKafkaFlags(fs, args, os.Getenv)
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		fs.Usage()
		return errors.New("name at least one topic")
	}
	kafkaOpts, err := cfg.KafkaOpts()
	if err != nil {
		return err
	}
	reg, err := client.New(*registryURL)
	if err != nil {
		return fmt.Errorf("schema registry %q: %w", *registryURL, err)
	}
	start := kgo.NewOffset().AtStart()
	if *fromEnd {
		start = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(append(kafkaOpts,
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = cl.Ping(pingCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("reach Kafka at %v (kafka.bootstrap.servers): %w", cfg.KafkaBrokers, kafkaconn.Explain(err))
	}

	dec := registry.NewDecoder(client.NewCached(reg))
	enc := json.NewEncoder(stdout)
	printed := 0
	for {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if *idle > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, *idle)
		}
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil || (fetches.Empty() && pollCtx.Err() != nil) {
			return nil // interrupted, or idle for long enough
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, kafkaconn.Explain(fe.Err))
			}
		}
		for it := fetches.RecordIter(); !it.Done(); {
			line, err := decodeRecord(ctx, dec, it.Next())
			if err != nil {
				return err
			}
			if err := enc.Encode(line); err != nil {
				return fmt.Errorf("write record: %w", err)
			}
			if printed++; *maxRecords > 0 && printed >= *maxRecords {
				return nil
			}
		}
	}
}

type consumedRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Headers   map[string]string `json:"headers,omitempty"`
	Key       any               `json:"key"`
	Value     any               `json:"value"`
}

func decodeRecord(ctx context.Context, dec *registry.Decoder, r *kgo.Record) (consumedRecord, error) {
	out := consumedRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
	for _, h := range r.Headers {
		if out.Headers == nil {
			out.Headers = make(map[string]string, len(r.Headers))
		}
		out.Headers[h.Key] = string(h.Value)
	}
	for _, part := range []struct {
		name string
		raw  []byte
		dst  *any
	}{{"key", r.Key, &out.Key}, {"value", r.Value, &out.Value}} {
		if part.raw == nil {
			continue // a tombstone's value
		}
		v, err := dec.Decode(ctx, part.raw)
		if errors.Is(err, registry.ErrNotWireFormat) {
			*part.dst = plain(part.raw)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("decode %s of %s[%d]@%d: %w", part.name, r.Topic, r.Partition, r.Offset, err)
		}
		*part.dst = jsonSafe(v)
	}
	return out, nil
}

// plain is a key or value written without the registry (key.format or value.format json,
// json_schema or string): JSON as it is, anything else as text.
func plain(raw []byte) any {
	if json.Valid(raw) {
		return json.RawMessage(raw)
	}
	return string(raw)
}

// jsonSafe replaces the float values JSON cannot carry (NaN, ±Inf) with their names.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	case float32:
		return jsonSafe(float64(x))
	case map[string]any:
		for k, e := range x {
			x[k] = jsonSafe(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonSafe(e)
		}
	}
	return v
}
