package offsets

import (
	"reflect"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongorelay/mongorelay/tasks/resumetoken"
)

// A v1 event inside a transaction (txnOpIndex 4), from debezium/debezium's
// MongoUtilTest.java; see tasks/resumetoken for the other real tokens.
const txnToken = "8265F49506000007662B022C01002B086E5A1004448A9E1A91724ECA875AAFA40773D05C46645F6964006465F49506238B3BBCC1CB20C00004"

func TestValueFormat(t *testing.T) {
	v := &Value{
		Version:     1,
		ResumeToken: &ResumeToken{Data: "8263515EAC000000022B0429296E1404"},
		ClusterTime: &ClusterTime{T: 1666277036, I: 2},
		Snapshot:    &Snapshot{MinID: `{"$oid":"635019a078be67426d7cf4d2"}`, LastID: `{"$numberInt":"7"}`, Copied: 7},
		UpdatedMs:   1721140162914,
	}
	want := `{"v":1,"resume_token":{"_data":"8263515EAC000000022B0429296E1404"},` +
		`"cluster_time":{"t":1666277036,"i":2},"txn_op_index":0,` +
		`"snapshot":{"min_id":"{\"$oid\":\"635019a078be67426d7cf4d2\"}","max_id":"","last_id":"{\"$numberInt\":\"7\"}","copied":7,"done":false},` +
		`"updated_ms":1721140162914}`
	if got := string(v.encode()); got != want {
		t.Errorf("encode =\n %s\nwant\n %s", got, want)
	}
	back, err := DecodeValue([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("round trip = %+v, want %+v", back, v)
	}

	empty := `{"v":1,"resume_token":null,"cluster_time":null,"txn_op_index":0,"snapshot":null,"updated_ms":0}`
	if got := string((&Value{Version: 1}).encode()); got != empty {
		t.Errorf("encode of an empty value = %s, want %s", got, empty)
	}
}

func TestDecodeValue(t *testing.T) {
	// Fields added later within version 1 are ignored by this reader.
	v, err := DecodeValue([]byte(`{"v":1,"cluster_time":{"t":5,"i":1},"reshard":{"from":"0-of-2"}}`))
	if err != nil || v.ClusterTime.T != 5 {
		t.Errorf("DecodeValue with an unknown field = %+v, %v", v, err)
	}
	for name, in := range map[string]string{
		"newer format": `{"v":2,"cluster_time":{"t":5,"i":1}}`,
		"no version":   `{"cluster_time":{"t":5,"i":1}}`,
		"not JSON":     `{"v":1`,
		"wrong type":   `{"v":"1"}`,
	} {
		if v, err := DecodeValue([]byte(in)); err == nil {
			t.Errorf("%s: DecodeValue(%s) = %+v, want an error", name, in, v)
		}
	}
	if _, err := DecodeValue([]byte(`{"v":2}`)); err == nil || !strings.Contains(err.Error(), "newer mongorelay") {
		t.Errorf("newer format error = %v, want it to say a newer mongorelay wrote it", err)
	}
}

func TestResumeAtAndPosition(t *testing.T) {
	v, err := ResumeAt(txnToken)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != FormatVersion || v.ResumeToken.Data != txnToken ||
		*v.ClusterTime != (ClusterTime{T: 1710527750, I: 1894}) || v.TxnOpIndex != 4 {
		t.Errorf("ResumeAt = %+v", v)
	}
	pos, err := v.Position()
	if err != nil || pos.TxnOpIndex != 4 || pos.TokenType != resumetoken.Event {
		t.Errorf("Position = %+v, %v", pos, err)
	}
	if _, err := ResumeAt("nope"); err == nil {
		t.Errorf("ResumeAt(garbage) succeeded")
	}

	start := &Value{Version: 1, ClusterTime: &ClusterTime{T: 1710527750, I: 1894}}
	pos, err = start.Position()
	if err != nil || pos.TokenType != resumetoken.HighWaterMark || pos.ClusterTime != (bson.Timestamp{T: 1710527750, I: 1894}) {
		t.Errorf("Position of a cluster time = %+v, %v", pos, err)
	}
	// A start point recorded as a cluster time comes before the events at it.
	event, _ := v.Position()
	if resumetoken.Compare(pos, event) != -1 {
		t.Errorf("a start point at T must sort before events at T")
	}
	if _, err := (&Value{Version: 1}).Position(); err == nil {
		t.Errorf("Position of a value with neither token nor time succeeded")
	}
}

func TestEncodeID(t *testing.T) {
	oid, _ := bson.ObjectIDFromHex("635019a078be67426d7cf4d2")
	tests := []struct {
		id   any
		want string
	}{
		{oid, `{"$oid":"635019a078be67426d7cf4d2"}`},
		{int32(7), `{"$numberInt":"7"}`},
		{int64(7), `{"$numberLong":"7"}`},
		{7.5, `{"$numberDouble":"7.5"}`},
		{"a\"b", `"a\"b"`},
		{bson.D{{Key: "tenant", Value: "x"}, {Key: "n", Value: int32(1)}}, `{"tenant":"x","n":{"$numberInt":"1"}}`},
		{bson.Binary{Subtype: 4, Data: make([]byte, 16)}, `{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAA==","subType":"04"}}`},
	}
	for _, tt := range tests {
		typ, data, err := bson.MarshalValue(tt.id)
		if err != nil {
			t.Fatal(err)
		}
		raw := bson.RawValue{Type: typ, Value: data}
		got, err := EncodeID(raw)
		if err != nil {
			t.Fatalf("EncodeID(%v): %v", tt.id, err)
		}
		if got != tt.want {
			t.Errorf("EncodeID(%v) = %s, want %s", tt.id, got, tt.want)
		}
		back, err := DecodeID(got)
		if err != nil {
			t.Fatalf("DecodeID(%s): %v", got, err)
		}
		if !back.Equal(raw) {
			t.Errorf("DecodeID(%s) = %v, want %v", got, back, raw)
		}
	}
	if _, err := DecodeID(`{"$oid":`); err == nil {
		t.Errorf("DecodeID accepted broken JSON")
	}
}
