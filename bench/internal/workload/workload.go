// Package workload generates the documents and operations every benchmarked system reads: a
// ~1 KB document of mixed BSON types, a seeded 50/30/20 insert/update/delete mix, and the
// latency marker a consumer finds in any output format.
package workload

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Generator builds documents and operations from a seed: two runs with the same seed write the
// same shapes and sizes (ObjectIds and the latency marker carry the time of the run).
type Generator struct {
	rng  *rand.Rand
	seq  int64
	live []bson.ObjectID // documents inserted by Mix and not deleted, for updates and deletes
}

// New returns a generator seeded with seed.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, 0x6d6f6e676f72656c))}
}

var (
	cities   = []string{"Lisbon", "Osaka", "Nairobi", "Toronto", "Kraków", "Medellín", "Brisbane", "Tromsø"}
	statuses = []string{"new", "active", "suspended", "closed"}
	words    = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
		"juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"}
)

// Doc returns a new document of about 1 KB (BSON) with an ObjectId _id and fields of most BSON
// types a real collection holds: strings, int32, int64, double, bool, date, Decimal128, binary,
// an array of strings, an array of sub-documents and a nested document. Its "lt" field holds
// LatencyMarker(sent), the time the writer sends it.
func (g *Generator) Doc(sent time.Time) bson.D {
	g.seq++
	r := g.rng
	items := make(bson.A, 3)
	for i := range items {
		items[i] = bson.D{
			{Key: "sku", Value: fmt.Sprintf("SKU-%06d", r.IntN(1_000_000))},
			{Key: "qty", Value: int32(1 + r.IntN(9))},
			{Key: "price", Value: float64(r.IntN(100_000)) / 100},
		}
	}
	tags := make(bson.A, 4)
	for i := range tags {
		tags[i] = words[r.IntN(len(words))]
	}
	dec, _ := bson.ParseDecimal128(strconv.FormatFloat(float64(r.IntN(10_000_000))/100, 'f', 2, 64))
	blob := make([]byte, 32)
	for i := range blob {
		blob[i] = byte(r.Uint32())
	}
	return bson.D{
		{Key: "_id", Value: bson.NewObjectID()},
		{Key: "seq", Value: g.seq},
		{Key: "lt", Value: LatencyMarker(sent)},
		{Key: "name", Value: fmt.Sprintf("%s %s", words[r.IntN(len(words))], words[r.IntN(len(words))])},
		{Key: "email", Value: fmt.Sprintf("user%d@example.com", r.IntN(10_000_000))},
		{Key: "age", Value: int32(18 + r.IntN(70))},
		{Key: "score", Value: r.Float64() * 1000},
		{Key: "active", Value: r.IntN(2) == 0},
		{Key: "status", Value: statuses[r.IntN(len(statuses))]},
		{Key: "created", Value: bson.DateTime(1_700_000_000_000 + r.Int64N(100_000_000_000))},
		{Key: "balance", Value: dec},
		{Key: "visits", Value: r.Int64N(1 << 40)},
		{Key: "checksum", Value: bson.Binary{Subtype: 0, Data: blob}},
		{Key: "tags", Value: tags},
		{Key: "address", Value: bson.D{
			{Key: "street", Value: fmt.Sprintf("%d %s street", 1+r.IntN(999), words[r.IntN(len(words))])},
			{Key: "city", Value: cities[r.IntN(len(cities))]},
			{Key: "zip", Value: fmt.Sprintf("%05d", r.IntN(100_000))},
			{Key: "geo", Value: bson.A{r.Float64()*360 - 180, r.Float64()*180 - 90}},
		}},
		{Key: "items", Value: items},
		{Key: "notes", Value: g.text(400)},
	}
}

// text returns n bytes of words, so the document compresses like prose, not like noise.
func (g *Generator) text(n int) string {
	var b bytes.Buffer
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[g.rng.IntN(len(words))])
	}
	return b.String()[:n]
}

// OpKind is one kind of write.
type OpKind int

// The kinds of write Mix produces.
const (
	Insert OpKind = iota
	Update
	Delete
)

// Op is one write of the mix: a document to insert, or the _id to update or delete and, for an
// update, the update document.
type Op struct {
	Kind   OpKind
	Doc    bson.D
	ID     bson.ObjectID
	Update bson.D
}

// Mix returns the next operation of a 50/30/20 insert/update/delete mix over the documents the
// mix itself inserted; while none is live it inserts. Every update changes the document.
func (g *Generator) Mix(sent time.Time) Op {
	p := g.rng.IntN(100)
	switch {
	case p < 50 || len(g.live) == 0:
		d := g.Doc(sent)
		id := d[0].Value.(bson.ObjectID)
		g.live = append(g.live, id)
		return Op{Kind: Insert, Doc: d, ID: id}
	case p < 80:
		id := g.live[g.rng.IntN(len(g.live))]
		return Op{Kind: Update, ID: id, Update: bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "score", Value: g.rng.Float64() * 1000},
				{Key: "status", Value: statuses[g.rng.IntN(len(statuses))]},
				{Key: "lt", Value: LatencyMarker(sent)},
				{Key: "address.city", Value: cities[g.rng.IntN(len(cities))]},
			}},
			{Key: "$inc", Value: bson.D{{Key: "visits", Value: int64(1)}}},
		}}
	default:
		i := g.rng.IntN(len(g.live))
		id := g.live[i]
		g.live[i] = g.live[len(g.live)-1]
		g.live = g.live[:len(g.live)-1]
		return Op{Kind: Delete, ID: id}
	}
}

// markerPrefix and markerSuffix frame the send time in a document's "lt" string. The marker
// has no character any JSON or Avro encoder escapes, so its bytes appear verbatim in every
// output format benchmarked (Avro, JSON, JSON inside a JSON string).
const (
	markerPrefix = "~LT"
	markerSuffix = '~'
	markerDigits = 19
)

// LatencyMarker returns the marker holding t (Unix nanoseconds).
func LatencyMarker(t time.Time) string {
	return fmt.Sprintf("%s%0*d%c", markerPrefix, markerDigits, t.UnixNano(), markerSuffix)
}

// FindLatencyMarker returns the time in the first marker in b.
func FindLatencyMarker(b []byte) (time.Time, bool) {
	i := bytes.Index(b, []byte(markerPrefix))
	if i < 0 || len(b) < i+len(markerPrefix)+markerDigits+1 {
		return time.Time{}, false
	}
	digits := b[i+len(markerPrefix) : i+len(markerPrefix)+markerDigits]
	if b[i+len(markerPrefix)+markerDigits] != markerSuffix {
		return time.Time{}, false
	}
	var ns int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		ns = ns*10 + int64(c-'0')
	}
	return time.Unix(0, ns), true
}
