package changestream

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// ErrSplitEvent is wrapped by every error about fragments of a split event that cannot be put
// back together: one missing, repeated or out of order. The stream stops rather than deliver a
// part of an event.
var ErrSplitEvent = errors.New("split change event cannot be reassembled")

// splitStage is the stage that makes the server split an event over 16 MB into fragments
// instead of failing with BSONObjectTooLarge. It must be the pipeline's last stage.
func splitStage() bson.D {
	return bson.D{{Key: "$changeStreamSplitLargeEvent", Value: bson.D{}}}
}

// SplitsLargeEvents reports whether a server of this version (buildInfo's versionArray) runs
// $changeStreamSplitLargeEvent: 7.0 and later, and 6.0 from 6.0.9, where it was backported.
// The manual names no 6.1 to 6.3 rapid release, so those are taken not to have it.
func SplitsLargeEvents(version []int) bool {
	get := func(i int) int {
		if i < len(version) {
			return version[i]
		}
		return 0
	}
	major, minor, patch := get(0), get(1), get(2)
	return major >= 7 || (major == 6 && minor == 0 && patch >= 9)
}

// ServerSplitsLargeEvents asks the deployment the client is connected to for its version
// (buildInfo) and reports whether it runs $changeStreamSplitLargeEvent. Call it once per client.
func ServerSplitsLargeEvents(ctx context.Context, cl *mongo.Client) (bool, error) {
	var info struct {
		Version      string `bson:"version"`
		VersionArray []int  `bson:"versionArray"`
	}
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("read the server version (buildInfo): %w", err)
	}
	return SplitsLargeEvents(info.VersionArray), nil
}

// fragments puts split events back together. The server sends the fragments of one event one
// after the other, each with its own resume token (_id) and splitEvent: {fragment: n, of: m},
// n counting from 1; the top-level fields of the event are spread over them, none split
// further. Nothing else comes between the fragments of one event.
type fragments struct {
	// next is the fragment number expected next; 0 when no event is pending.
	next, of int
	// body holds the top-level fields of the fragments so far, without _id and splitEvent,
	// copied: a fragment's bytes do not outlive its batch.
	body []byte
}

// add takes the stream's next event. It returns ev itself when ev is whole, the reassembled
// event with the last fragment, and nil for the fragments before it. The reassembled event's
// _id is the last fragment's token: resuming after it resumes after the whole event.
func (f *fragments) add(ev bson.Raw) (bson.Raw, error) {
	split, err := ev.LookupErr("splitEvent")
	if err != nil {
		if f.next != 0 {
			return nil, fmt.Errorf("%w: an event without splitEvent came while fragment %d of %d was due (token %s)",
				ErrSplitEvent, f.next, f.of, tokenOf(ev))
		}
		return ev, nil
	}
	n, of, err := fragmentOf(split)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (token %s)", ErrSplitEvent, err, tokenOf(ev))
	}
	switch {
	case f.next == 0 && n != 1:
		return nil, fmt.Errorf("%w: fragment %d of %d came first; fragment 1 is missing (token %s)",
			ErrSplitEvent, n, of, tokenOf(ev))
	case f.next == 0:
		f.next, f.of = 1, of
	case n != f.next || of != f.of:
		return nil, fmt.Errorf("%w: fragment %d of %d came where fragment %d of %d was due (token %s)",
			ErrSplitEvent, n, of, f.next, f.of, tokenOf(ev))
	}
	elems, err := ev.Elements()
	if err != nil {
		return nil, fmt.Errorf("%w: fragment %d of %d: %v", ErrSplitEvent, n, of, err)
	}
	var id bson.RawElement
	for _, el := range elems {
		switch el.Key() {
		case "_id":
			id = el
		case "splitEvent":
		default:
			f.body = append(f.body, el...)
		}
	}
	if id == nil {
		return nil, fmt.Errorf("%w: fragment %d of %d has no _id resume token", ErrSplitEvent, n, of)
	}
	if n < of {
		f.next++
		return nil, nil
	}
	idx, doc := bsoncore.ReserveLength(make([]byte, 0, 4+len(id)+len(f.body)+1))
	doc = append(doc, id...)
	doc = append(doc, f.body...)
	doc = append(doc, 0)
	doc = bsoncore.UpdateLength(doc, idx, int32(len(doc)))
	// Split events are rare and large: the buffer is not kept for the next one.
	f.next, f.of, f.body = 0, 0, nil
	return bson.Raw(doc), nil
}

// pending reports whether some fragments of an event have come and the rest not yet.
func (f *fragments) pending() bool { return f.next != 0 }

// fragmentOf reads splitEvent: {fragment: n, of: m}.
func fragmentOf(v bson.RawValue) (n, of int, err error) {
	doc, ok := v.DocumentOK()
	if !ok {
		return 0, 0, fmt.Errorf("splitEvent is a %s, not a document", v.Type)
	}
	num := func(key string) (int, error) {
		x, ok := doc.Lookup(key).AsInt64OK()
		if !ok {
			return 0, fmt.Errorf("splitEvent.%s is missing or not a number", key)
		}
		return int(x), nil
	}
	if n, err = num("fragment"); err != nil {
		return 0, 0, err
	}
	if of, err = num("of"); err != nil {
		return 0, 0, err
	}
	if n < 1 || n > of {
		return 0, 0, fmt.Errorf("splitEvent {fragment: %d, of: %d} is out of range", n, of)
	}
	return n, of, nil
}

// tokenOf is the event's resume token string, for errors.
func tokenOf(ev bson.Raw) string {
	if data, ok := ev.Lookup("_id", "_data").StringValueOK(); ok {
		return data
	}
	return "(none)"
}
