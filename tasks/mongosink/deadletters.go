package mongosink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Name of the header that says where a dead letter came from, as Kafka Connect's.
const (
	headerTopic     = "__connect.errors.topic"
	headerPartition = "__connect.errors.partition"
	headerOffset    = "__connect.errors.offset"
	headerConnector = "__connect.errors.connector.name"
	headerTask      = "__connect.errors.task.id"
	headerStage     = "__connect.errors.stage"
	headerClass     = "__connect.errors.class.name"
	headerException = "__connect.errors.exception.class.name"
	headerMessage   = "__connect.errors.exception.message"
)

// deadLetter is a record that could not be written, and why.
type deadLetter struct {
	rec *kgo.Record
	err error
}

// deadLetters writes records that could not be written to errors.deadletterqueue.topic.name.
type deadLetters struct {
	cfg       *Config
	connector string
	task      string
}

// create creates the dead letter topic if it is missing.
func (d *deadLetters) create(ctx context.Context, kafka *kgo.Client) error {
	if d.cfg.DLQTopic == "" || kafka == nil {
		return nil
	}
	resp, err := kadm.NewClient(kafka).CreateTopic(ctx, -1, int16(d.cfg.DLQReplication), nil, d.cfg.DLQTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create the dead letter topic %s: %w", d.cfg.DLQTopic, err)
	}
	return nil
}

// records returns the dead letter records of dead, for the partition's producer to write in
// its open transaction, so that they are committed with the offset that passes them. Without
// a dead letter topic there are none: errors.tolerance=all skips them, and they are logged.
func (d *deadLetters) records(dead []deadLetter) []*kgo.Record {
	if d.cfg.DLQTopic == "" {
		return nil
	}
	out := make([]*kgo.Record, 0, len(dead))
	for _, dl := range dead {
		r := &kgo.Record{Topic: d.cfg.DLQTopic, Key: dl.rec.Key, Value: dl.rec.Value, Headers: slices.Clone(dl.rec.Headers)}
		if d.cfg.DLQHeaders {
			stage := "TASK_PUT"
			if errors.Is(dl.err, errNotRead) {
				stage = "VALUE_CONVERTER"
			}
			r.Headers = append(r.Headers,
				kgo.RecordHeader{Key: headerTopic, Value: []byte(dl.rec.Topic)},
				kgo.RecordHeader{Key: headerPartition, Value: []byte(strconv.Itoa(int(dl.rec.Partition)))},
				kgo.RecordHeader{Key: headerOffset, Value: []byte(strconv.FormatInt(dl.rec.Offset, 10))},
				kgo.RecordHeader{Key: headerConnector, Value: []byte(d.connector)},
				kgo.RecordHeader{Key: headerTask, Value: []byte(d.task)},
				kgo.RecordHeader{Key: headerStage, Value: []byte(stage)},
				kgo.RecordHeader{Key: headerClass, Value: []byte("mongorelay.mongosink")},
				kgo.RecordHeader{Key: headerException, Value: []byte(exceptionClass(dl.err))},
				kgo.RecordHeader{Key: headerMessage, Value: []byte(dl.err.Error())},
			)
		}
		out = append(out, r)
	}
	return out
}

// exceptionClass names an error as Kafka Connect's header would, by the Java exception a
// Connect sink raises for the same failure.
func exceptionClass(err error) string {
	if errors.Is(err, errNotRead) {
		return "org.apache.kafka.connect.errors.DataException"
	}
	return "org.apache.kafka.connect.errors.ConnectException"
}
