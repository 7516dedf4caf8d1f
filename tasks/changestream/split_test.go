package changestream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/envelope"
	"github.com/mongorelay/mongorelay/tasks/prefetch"
)

// The fragments below have the shape MongoDB's manual shows for $changeStreamSplitLargeEvent:
// an update of a document with pre- and post-images, each near 16 MB, comes in three
// fragments; the first holds the event's context and updateDescription, the second
// fullDocument, the third fullDocumentBeforeChange, and each has its own resume token and
// splitEvent. The large values are scaled down: reassembly does not depend on sizes.

// fragmentToken is the resume token of fragment n of the event at one cluster time; a real
// server's tokens of one event differ in the fragment number they end with.
func fragmentToken(n int) string {
	return fmt.Sprintf("82643E89F8000000012B042C0100296E5A1004%s46645F69640029000%d04", strings.Repeat("AB", 16), n)
}

func idOf(data string) bson.D { return bson.D{{Key: "_data", Value: data}} }

func splitOf(n, of int) bson.D {
	return bson.D{{Key: "fragment", Value: int32(n)}, {Key: "of", Value: int32(of)}}
}

var clusterTime = bson.Timestamp{T: 1681820152, I: 1}

func updateFragments() []bson.Raw {
	after := bson.D{{Key: "_id", Value: int32(0)}, {Key: "largeField", Value: strings.Repeat("b", 64)}}
	before := bson.D{{Key: "_id", Value: int32(0)}, {Key: "largeField", Value: strings.Repeat("a", 64)}}
	return []bson.Raw{
		mustRaw(bson.D{
			{Key: "_id", Value: idOf(fragmentToken(1))},
			{Key: "splitEvent", Value: splitOf(1, 3)},
			{Key: "wallTime", Value: bson.DateTime(1681820152000)},
			{Key: "clusterTime", Value: clusterTime},
			{Key: "operationType", Value: "update"},
			{Key: "ns", Value: bson.D{{Key: "db", Value: "test"}, {Key: "coll", Value: "myCollection"}}},
			{Key: "documentKey", Value: bson.D{{Key: "_id", Value: int32(0)}}},
			{Key: "updateDescription", Value: bson.D{
				{Key: "updatedFields", Value: bson.D{{Key: "largeField", Value: strings.Repeat("b", 64)}}},
				{Key: "removedFields", Value: bson.A{}},
				{Key: "truncatedArrays", Value: bson.A{}},
			}},
		}),
		mustRaw(bson.D{
			{Key: "_id", Value: idOf(fragmentToken(2))},
			{Key: "splitEvent", Value: splitOf(2, 3)},
			{Key: "fullDocument", Value: after},
		}),
		mustRaw(bson.D{
			{Key: "_id", Value: idOf(fragmentToken(3))},
			{Key: "splitEvent", Value: splitOf(3, 3)},
			{Key: "fullDocumentBeforeChange", Value: before},
		}),
	}
}

// insertEvent is a whole (unsplit) event.
func insertEvent(token string, id int32) bson.Raw {
	return mustRaw(bson.D{
		{Key: "_id", Value: idOf(token)},
		{Key: "operationType", Value: "insert"},
		{Key: "clusterTime", Value: clusterTime},
		{Key: "ns", Value: bson.D{{Key: "db", Value: "test"}, {Key: "coll", Value: "myCollection"}}},
		{Key: "documentKey", Value: bson.D{{Key: "_id", Value: id}}},
		{Key: "fullDocument", Value: bson.D{{Key: "_id", Value: id}}},
	})
}

func TestASplitUpdateIsReassembledIntoOneEventBeforeTheEncoder(t *testing.T) {
	frags := updateFragments()
	var f fragments
	for i, frag := range frags[:2] {
		ev, err := f.add(frag)
		if err != nil || ev != nil {
			t.Fatalf("fragment %d: got (%v, %v), want nothing yet", i+1, ev, err)
		}
		if !f.pending() {
			t.Fatalf("fragment %d: not pending", i+1)
		}
	}
	ev, err := f.add(frags[2])
	if err != nil || ev == nil {
		t.Fatalf("last fragment: got (%v, %v), want the event", ev, err)
	}
	if f.pending() {
		t.Fatal("still pending after the last fragment")
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("reassembled event is not valid BSON: %v", err)
	}

	want := []string{"_id", "wallTime", "clusterTime", "operationType", "ns", "documentKey",
		"updateDescription", "fullDocument", "fullDocumentBeforeChange"}
	elems, _ := ev.Elements()
	var got []string
	for _, el := range elems {
		got = append(got, el.Key())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("fields %v, want %v (no splitEvent, every fragment's fields once)", got, want)
	}

	parsed, err := envelope.Parse(ev)
	if err != nil {
		t.Fatalf("envelope.Parse: %v", err)
	}
	if string(parsed.ResumeToken) != fragmentToken(3) {
		t.Errorf("resume token %s, want the last fragment's %s", parsed.ResumeToken, fragmentToken(3))
	}
	if parsed.Op != envelope.OpUpdate || parsed.Kind() != envelope.KindRecord {
		t.Errorf("op %s kind %v, want an update record", parsed.OperationType, parsed.Kind())
	}
	if parsed.ClusterTime != clusterTime {
		t.Errorf("clusterTime %v, want %v", parsed.ClusterTime, clusterTime)
	}
	if v := parsed.FullDocument.Lookup("largeField").StringValue(); v != strings.Repeat("b", 64) {
		t.Errorf("fullDocument.largeField %q", v)
	}
	if v := parsed.FullDocumentBeforeChange.Lookup("largeField").StringValue(); v != strings.Repeat("a", 64) {
		t.Errorf("fullDocumentBeforeChange.largeField %q", v)
	}
	if !parsed.HasUpdateDescription || parsed.UpdatedFields.Lookup("largeField").StringValue() != strings.Repeat("b", 64) {
		t.Errorf("updateDescription lost: %v", parsed.UpdatedFields)
	}
}

func TestWholeEventsPassThroughAroundASplitOne(t *testing.T) {
	var f fragments
	stream := append(append([]bson.Raw{insertEvent("A1", 1)}, updateFragments()...), insertEvent("A2", 2))
	var out []bson.Raw
	for _, raw := range stream {
		ev, err := f.add(raw)
		if err != nil {
			t.Fatal(err)
		}
		if ev != nil {
			out = append(out, append(bson.Raw(nil), ev...))
		}
	}
	if len(out) != 3 {
		t.Fatalf("%d events, want 3 (insert, reassembled update, insert)", len(out))
	}
	if !bytesEqual(out[0], stream[0]) || !bytesEqual(out[2], stream[4]) {
		t.Error("a whole event was changed")
	}
	if op := out[1].Lookup("operationType").StringValue(); op != "update" {
		t.Errorf("middle event is a %s", op)
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func TestFragmentsOutOfOrderOrMissingAreAnError(t *testing.T) {
	frags := updateFragments()
	whole := insertEvent("B1", 7)
	bad := func(split any) bson.Raw {
		return mustRaw(bson.D{{Key: "_id", Value: idOf(fragmentToken(1))}, {Key: "splitEvent", Value: split}})
	}
	tests := []struct {
		name   string
		events []bson.Raw
		want   string
	}{
		{"the first fragment is missing", []bson.Raw{frags[1]}, "fragment 2 of 3 came first"},
		{"a middle fragment is missing", []bson.Raw{frags[0], frags[2]}, "fragment 3 of 3 came where fragment 2 of 3 was due"},
		{"a fragment is repeated", []bson.Raw{frags[0], frags[0]}, "fragment 1 of 3 came where fragment 2 of 3 was due"},
		{"fragments swap", []bson.Raw{frags[0], frags[2], frags[1]}, "fragment 3 of 3 came where fragment 2 of 3 was due"},
		{"a whole event cuts in", []bson.Raw{frags[0], frags[1], whole}, "an event without splitEvent came while fragment 3 of 3 was due"},
		{"fragments of two sizes", []bson.Raw{frags[0], mustRaw(bson.D{
			{Key: "_id", Value: idOf(fragmentToken(2))}, {Key: "splitEvent", Value: splitOf(2, 4)}})},
			"fragment 2 of 4 came where fragment 2 of 3 was due"},
		{"fragment 0", []bson.Raw{bad(splitOf(0, 3))}, "out of range"},
		{"fragment past of", []bson.Raw{bad(splitOf(4, 3))}, "out of range"},
		{"no of", []bson.Raw{bad(bson.D{{Key: "fragment", Value: int32(1)}})}, "splitEvent.of is missing"},
		{"splitEvent not a document", []bson.Raw{bad("1/3")}, "not a document"},
		{"a fragment without _id", []bson.Raw{mustRaw(bson.D{{Key: "splitEvent", Value: splitOf(1, 2)}})}, "has no _id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fragments
			var err error
			for _, ev := range tt.events {
				var out bson.Raw
				if out, err = f.add(ev); err != nil {
					break
				}
				if out != nil && out.Lookup("splitEvent").Type != 0 {
					t.Fatal("a fragment was delivered as an event")
				}
			}
			if !errors.Is(err, ErrSplitEvent) {
				t.Fatalf("error %v, want ErrSplitEvent", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestSplitsLargeEventsFromTheServerVersion(t *testing.T) {
	tests := []struct {
		version []int
		want    bool
	}{
		{nil, false},
		{[]int{5, 0, 19, 0}, false},
		{[]int{6, 0, 0, 0}, false}, // the stand-in
		{[]int{6, 0, 8, 0}, false},
		{[]int{6, 0, 9, 0}, true},
		{[]int{6, 0, 20, 0}, true},
		{[]int{6, 1, 0, 0}, false},
		{[]int{6, 3, 2, 0}, false},
		{[]int{7, 0, 0, 0}, true},
		{[]int{8, 0, 4, 0}, true},
	}
	for _, tt := range tests {
		if got := SplitsLargeEvents(tt.version); got != tt.want {
			t.Errorf("SplitsLargeEvents(%v) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

func TestTheSplitStageEndsThePipeline(t *testing.T) {
	user := []bson.D{{{Key: "$match", Value: bson.D{{Key: "operationType", Value: "insert"}}}}}
	o := Options{Pipeline: user}
	if got := o.pipeline(); len(got) != 1 {
		t.Fatalf("without SplitLargeEvents: %v", got)
	}
	o.SplitLargeEvents = true
	got := o.pipeline()
	if len(got) != 2 || got[1][0].Key != "$changeStreamSplitLargeEvent" {
		t.Fatalf("with SplitLargeEvents: %v, want the user's stage then $changeStreamSplitLargeEvent", got)
	}
	if len(user) != 1 {
		t.Fatal("the caller's pipeline was changed")
	}
}

// batch is one server batch: its events and its postBatchResumeToken.
type batch struct {
	events []bson.Raw
	pbrt   string
}

// scriptedStream is a Stream reading the given server batches, in order.
func scriptedStream(t *testing.T, batchSize int, batches []batch) *Stream {
	t.Helper()
	metas := make([]bson.Raw, len(batches))
	for i, b := range batches {
		metas[i] = mustRaw(idOf(b.pbrt))
	}
	i := 0
	fill := func(ctx context.Context, b *prefetch.Batch[bson.Raw]) (bool, error) {
		if i == len(batches) {
			<-ctx.Done()
			return true, ctx.Err()
		}
		for _, ev := range batches[i].events {
			b.Add(ev)
		}
		b.Meta = metas[i]
		i++
		return false, nil
	}
	s := &Stream{batchSize: batchSize, splits: true}
	s.ahead = prefetch.Start(context.Background(), 1, fill)
	t.Cleanup(s.ahead.Stop)
	return s
}

func TestTheCommittedTokenNeverPointsInsideASplitEvent(t *testing.T) {
	frags := updateFragments()
	e1, e2, e3 := insertEvent("E1", 1), insertEvent("E2", 2), insertEvent("E3", 3)
	// Each batch is full (batch size 3, or 1), so NextBatch returns after each.
	tests := []struct {
		name      string
		batchSize int
		batches   []batch
		// wantTokens and wantEvents per NextBatch call: "" for no token.
		wantTokens []string
		wantEvents [][]string
	}{
		{
			name:      "a batch ends between fragments: the last whole event's token",
			batchSize: 3,
			batches: []batch{
				{[]bson.Raw{e1, frags[0], frags[1]}, fragmentToken(2)},
				{[]bson.Raw{frags[2], e2, e3}, "E3"},
			},
			wantTokens: []string{"E1", "E3"},
			wantEvents: [][]string{{"insert"}, {"update", "insert", "insert"}},
		},
		{
			name:      "one fragment per batch: no token until the event is whole",
			batchSize: 1,
			batches: []batch{
				{[]bson.Raw{frags[0]}, fragmentToken(1)},
				{[]bson.Raw{frags[1]}, fragmentToken(2)},
				{[]bson.Raw{frags[2]}, fragmentToken(3)},
			},
			wantTokens: []string{"", "", fragmentToken(3)},
			wantEvents: [][]string{nil, nil, {"update"}},
		},
		{
			name:      "a new split event starts after a reassembled one in one batch",
			batchSize: 3,
			batches: []batch{
				{[]bson.Raw{frags[0], frags[1], frags[2]}, fragmentToken(3)},
				{[]bson.Raw{e2, frags[0], frags[1]}, fragmentToken(2)},
				{[]bson.Raw{frags[2]}, fragmentToken(3) + "-later"},
			},
			wantTokens: []string{fragmentToken(3), "E2", fragmentToken(3) + "-later"},
			wantEvents: [][]string{{"update"}, {"insert"}, {"update"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := scriptedStream(t, tt.batchSize, tt.batches)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for call := range tt.wantTokens {
				var ops []string
				tok, err := s.NextBatch(ctx, func(ev bson.Raw) error {
					if ev.Lookup("splitEvent").Type != 0 {
						t.Error("a fragment reached the caller")
					}
					ops = append(ops, ev.Lookup("operationType").StringValue())
					return nil
				})
				if err != nil {
					t.Fatalf("call %d: %v", call, err)
				}
				got := ""
				if tok != nil {
					got = tok.Lookup("_data").StringValue()
				}
				if got != tt.wantTokens[call] {
					t.Errorf("call %d: token %q, want %q", call, got, tt.wantTokens[call])
				}
				if strings.Join(ops, ",") != strings.Join(tt.wantEvents[call], ",") {
					t.Errorf("call %d: events %v, want %v", call, ops, tt.wantEvents[call])
				}
			}
		})
	}
}

func TestAReassemblyErrorStopsTheBatch(t *testing.T) {
	frags := updateFragments()
	s := scriptedStream(t, 3, []batch{{[]bson.Raw{frags[0], frags[2]}, fragmentToken(3)}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := s.NextBatch(ctx, func(bson.Raw) error {
		t.Error("an event was delivered")
		return nil
	})
	if !errors.Is(err, ErrSplitEvent) || tok != nil {
		t.Fatalf("got (%v, %v), want ErrSplitEvent and no token", tok, err)
	}
}

// BenchmarkFragments measures what a stream that asked for split events pays: a look for
// splitEvent in every whole event, and the copy of a split one (three 1 MiB fragments).
func BenchmarkFragments(b *testing.B) {
	b.Run("whole event", func(b *testing.B) {
		ev := insertEvent("A1", 1)
		var f fragments
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.add(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("3 fragments of 1 MiB", func(b *testing.B) {
		big := strings.Repeat("x", 1<<20)
		frags := []bson.Raw{
			mustRaw(bson.D{{Key: "_id", Value: idOf(fragmentToken(1))}, {Key: "splitEvent", Value: splitOf(1, 3)},
				{Key: "operationType", Value: "update"}, {Key: "documentKey", Value: bson.D{{Key: "_id", Value: 1}}},
				{Key: "updateDescription", Value: bson.D{{Key: "updatedFields", Value: bson.D{{Key: "f", Value: big}}}}}}),
			mustRaw(bson.D{{Key: "_id", Value: idOf(fragmentToken(2))}, {Key: "splitEvent", Value: splitOf(2, 3)},
				{Key: "fullDocument", Value: bson.D{{Key: "f", Value: big}}}}),
			mustRaw(bson.D{{Key: "_id", Value: idOf(fragmentToken(3))}, {Key: "splitEvent", Value: splitOf(3, 3)},
				{Key: "fullDocumentBeforeChange", Value: bson.D{{Key: "f", Value: big}}}}),
		}
		var f fragments
		b.SetBytes(int64(len(frags[0]) + len(frags[1]) + len(frags[2])))
		b.ReportAllocs()
		for b.Loop() {
			for _, frag := range frags {
				if _, err := f.add(frag); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
