package mongosink

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// batch is the writes of a run of one partition's records, in offset order.
type batch struct {
	models []mongo.WriteModel
	recs   []*kgo.Record // recs[i] asked for models[i]
}

// add appends o's write model; a skip adds none.
func (b *batch) add(o op, r *kgo.Record) {
	m := model(o)
	if m == nil {
		return
	}
	b.models = append(b.models, m)
	b.recs = append(b.recs, r)
}

// model is the bulk write model of o: every write is keyed by _id, so a batch written again
// after a failure converges to the same documents.
func model(o op) mongo.WriteModel {
	byID := bson.D{{Key: "_id", Value: o.id}}
	switch o.kind {
	case opReplace:
		return mongo.NewReplaceOneModel().SetFilter(byID).SetReplacement(o.doc).SetUpsert(true)
	case opSet:
		fields := o.doc[1:] // withID put _id first
		if len(fields) == 0 {
			return mongo.NewReplaceOneModel().SetFilter(byID).SetReplacement(o.doc).SetUpsert(true)
		}
		return mongo.NewUpdateOneModel().SetFilter(byID).SetUpdate(bson.D{{Key: "$set", Value: fields}}).SetUpsert(true)
	case opInsert:
		return mongo.NewInsertOneModel().SetDocument(o.doc)
	case opDelete:
		return mongo.NewDeleteOneModel().SetFilter(byID)
	case opUpdate:
		var update bson.D
		if len(o.set) > 0 {
			update = append(update, bson.E{Key: "$set", Value: o.set})
		}
		if len(o.unset) > 0 {
			unset := make(bson.D, len(o.unset))
			for i, f := range o.unset {
				unset[i] = bson.E{Key: f, Value: ""}
			}
			update = append(update, bson.E{Key: "$unset", Value: unset})
		}
		if len(o.truncated) > 0 {
			push := make(bson.D, 0, len(o.truncated))
			for _, t := range o.truncated {
				if _, set := lookup(o.set, t.field); set {
					continue // the new array is set whole
				}
				push = append(push, bson.E{Key: t.field, Value: bson.D{{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: t.newSize}}})
			}
			if len(push) > 0 {
				update = append(update, bson.E{Key: "$push", Value: push})
			}
		}
		if len(update) == 0 {
			return nil
		}
		// No upsert: the change describes a document the collection has (or had: a later
		// delete in the same topic removes it again).
		return mongo.NewUpdateOneModel().SetFilter(byID).SetUpdate(update)
	}
	return nil
}

// writeFailure is a bulk write's refusal of one write, which no retry can fix.
type writeFailure struct {
	index int
	err   error
}

// splitBulkError separates the write errors of a bulk write (per write, permanent: a duplicate
// key, a document the server's validation refuses) from a failure of the whole write
// (network, write concern, a primary stepping down), which is retried.
func splitBulkError(err error) ([]writeFailure, error) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, err
	}
	out := make([]writeFailure, 0, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		if mongo.IsNetworkError(we) || we.HasErrorLabel("RetryableWriteError") {
			return nil, err
		}
		out = append(out, writeFailure{index: we.Index, err: fmt.Errorf("MongoDB refused the write (code %d): %s", we.Code, we.Message)})
	}
	return out, nil
}
