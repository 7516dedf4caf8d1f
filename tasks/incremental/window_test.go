package incremental

import (
	"fmt"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

func doc(t *testing.T, id any) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "v", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func idOf(t *testing.T, id any) bson.RawValue {
	t.Helper()
	return doc(t, id).Lookup("_id")
}

func ids(rows []bson.Raw) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprint(r.Lookup("_id").Int32()))
	}
	return out
}

// change is one stream event the window sees: at cluster time at, on document id (nil: an
// event without a document key, such as a drop).
type change struct {
	at bson.Timestamp
	id any
}

func TestWindowKeepsOnlyRowsNoChangeInsideItTouched(t *testing.T) {
	high := bson.Timestamp{T: 100, I: 5}
	tests := []struct {
		name    string
		changes []change
		want    []string
		// closedAt is the index of the change that closes the window (-1: none does).
		closedAt int
	}{
		{name: "no change keeps every row", want: []string{"1", "2", "3"}, closedAt: -1},
		{name: "a change inside the window drops its document",
			changes: []change{{bson.Timestamp{T: 100, I: 1}, int32(2)}}, want: []string{"1", "3"}, closedAt: -1},
		{name: "a change at the high watermark is inside",
			changes: []change{{high, int32(3)}}, want: []string{"1", "2"}, closedAt: -1},
		{name: "a change to a document outside the chunk drops nothing",
			changes: []change{{bson.Timestamp{T: 99}, int32(9)}}, want: []string{"1", "2", "3"}, closedAt: -1},
		{name: "a change after the high watermark closes the window before it is applied",
			changes: []change{{bson.Timestamp{T: 100, I: 2}, int32(1)}, {bson.Timestamp{T: 100, I: 6}, int32(2)}},
			want:    []string{"2", "3"}, closedAt: 1},
		{name: "an event without a document key drops every row",
			changes: []change{{bson.Timestamp{T: 100, I: 1}, nil}}, want: nil, closedAt: -1},
		{name: "the same document changed twice is dropped once",
			changes: []change{{bson.Timestamp{T: 99}, int32(1)}, {bson.Timestamp{T: 100}, int32(1)}},
			want:    []string{"2", "3"}, closedAt: -1},
		{name: "an _id of another type is another document",
			changes: []change{{bson.Timestamp{T: 99}, "1"}}, want: []string{"1", "2", "3"}, closedAt: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Open(high, []bson.Raw{doc(t, int32(1)), doc(t, int32(2)), doc(t, int32(3))})
			if err != nil {
				t.Fatal(err)
			}
			closedAt := -1
			for i, c := range tc.changes {
				if !w.Within(c.at) {
					closedAt = i
					break
				}
				if c.id == nil {
					w.Changed(bson.RawValue{}, false)
				} else {
					w.Changed(idOf(t, c.id), true)
				}
			}
			if closedAt != tc.closedAt {
				t.Errorf("closed at change %d, want %d", closedAt, tc.closedAt)
			}
			if got := ids(w.Rows()); !slices.Equal(got, tc.want) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWindowIsPassedByALaterResumeTokenOrTheSameTimeCaughtUp(t *testing.T) {
	high := bson.Timestamp{T: 100, I: 5}
	w, err := Open(high, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at       bson.Timestamp
		caughtUp bool
		want     bool
	}{
		{bson.Timestamp{T: 100, I: 4}, true, false},
		{high, false, false},
		{high, true, true},
		{bson.Timestamp{T: 100, I: 6}, false, true},
		{bson.Timestamp{T: 101}, false, true},
	}
	for _, tc := range tests {
		pos := resumetoken.Position{ClusterTime: tc.at, TokenType: resumetoken.HighWaterMark}
		if got := w.PassedBy(pos, tc.caughtUp); got != tc.want {
			t.Errorf("PassedBy(%v, caughtUp %v) = %v, want %v", tc.at, tc.caughtUp, got, tc.want)
		}
	}
}

func TestOpenRefusesADocumentWithoutID(t *testing.T) {
	b, _ := bson.Marshal(bson.D{{Key: "v", Value: 1}})
	if _, err := Open(bson.Timestamp{T: 1}, []bson.Raw{b}); err == nil {
		t.Fatal("Open took a document without _id")
	}
}
