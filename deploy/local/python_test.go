package local_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestPythonClientsReadWhatGoWrote proves the two servers speak to the third-party clients the
// downstream checks use: pymongo reads a document the Go driver wrote, and confluent-kafka
// (librdkafka) consumes a record franz-go produced.
func TestPythonClientsReadWhatGoWrote(t *testing.T) {
	python := testenv.Python(t)
	mongoURI := testenv.Mongo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	docID := fmt.Sprintf("doc-%d", time.Now().UnixNano())
	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatalf("connect to %s: %v", mongoURI, err)
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()
	doc := bson.D{
		{Key: "_id", Value: docID},
		{Key: "n", Value: int32(42)},
		{Key: "big", Value: int64(1) << 40},
		{Key: "s", Value: "héllo"},
		{Key: "nested", Value: bson.D{{Key: "a", Value: bson.A{int32(1), 2.5, "x"}}}},
	}
	if _, err := mc.Database("envtest").Collection("pycheck").InsertOne(ctx, doc); err != nil {
		t.Fatalf("insert %s: %v", docID, err)
	}

	adm := kadm.NewClient(newKafkaClient(t))
	topic := createTopic(t, ctx, adm, nil)
	value := "value-" + docID
	producer := newKafkaClient(t, kgo.DefaultProduceTopic(topic))
	rec := &kgo.Record{
		Key:     []byte("go-key"),
		Value:   []byte(value),
		Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("franz-go")}},
	}
	if err := producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}

	cmd := exec.CommandContext(ctx, python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "pycheck/test_reads_go_writes.py")
	cmd.Env = append(os.Environ(), "ENVTEST_DOC_ID="+docID, "ENVTEST_TOPIC="+topic, "ENVTEST_VALUE="+value)
	out, err := cmd.CombinedOutput()
	t.Logf("pytest:\n%s", out)
	if err != nil {
		t.Fatalf("python checks failed: %v", err)
	}
}
