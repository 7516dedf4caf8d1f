package workload

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestDocIsAboutOneKilobyte(t *testing.T) {
	g := New(1)
	for range 100 {
		b, err := bson.Marshal(g.Doc(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 900 || len(b) > 1100 {
			t.Fatalf("document is %d bytes, want about 1 KB", len(b))
		}
	}
}

func TestLatencyMarkerRoundTrips(t *testing.T) {
	now := time.Now()
	ext, _ := bson.MarshalExtJSON(bson.D{{Key: "lt", Value: LatencyMarker(now)}}, false, false)
	// As Debezium writes it: the document's JSON inside a JSON string.
	quoted := []byte(`{"after":"` + string(ext) + `"}`)
	for _, b := range [][]byte{ext, quoted} {
		got, ok := FindLatencyMarker(b)
		if !ok || !got.Equal(now) {
			t.Fatalf("FindLatencyMarker(%s) = %v, %v; want %v", b, got, ok, now)
		}
	}
	if _, ok := FindLatencyMarker([]byte("~LT123~")); ok {
		t.Fatal("a short marker was accepted")
	}
}

func TestMixProportions(t *testing.T) {
	g := New(7)
	var n [3]int
	for range 100_000 {
		n[g.Mix(time.Now()).Kind]++
	}
	for k, want := range []int{50_000, 30_000, 20_000} {
		if d := n[k] - want; d < -1000 || d > 1000 {
			t.Fatalf("kind %d: %d operations, want about %d", k, n[k], want)
		}
	}
}
