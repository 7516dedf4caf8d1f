package resumetoken

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Real tokens emitted by MongoDB servers, with where they were published.
const (
	// MongoDB 4.2+ (v1) insert event. mongodb-js/mongodb-resumetoken-decoder
	// README.md, decoded there as Timestamp(1630438675, 1), version 1,
	// tokenType 128, txnOpIndex 0, fromInvalidate false.
	v1Event = "82612E8513000000012B022C0100296E5A1004A5093ABB38FE4B9EA67F01BB1A96D812463C5F6964003C5F5F5F78000004"
	// v1 high-water mark. mongodb-js/mongodb-resumetoken-decoder
	// test/index.ts "can decode non-document resume tokens":
	// Timestamp(1630496062, 2), version 1, tokenType 0.
	v1HighWaterMark = "82612F653E000000022B0229296E04"
	// v2 insert event: the MongoDB manual, "Resume Tokens from Change
	// Events" (www.mongodb.com/docs/manual/changeStreams/#resume-tokens-from-change-events),
	// clusterTime Timestamp(1666193824, 1); also in debezium/debezium
	// debezium-connector-mongodb/src/test/java/io/debezium/connector/mongodb/SourceInfoTest.java.
	v2Event = "82635019A0000000012B042C0100296E5A1004AB1154ACACD849A48C61756D70D3B21F463C6F7065726174696F6E54797065003C696E736572740046646F63756D656E744B65790046645F69640064635019A078BE67426D7CF4D2000004"
	// v2 postBatchResumeToken of an empty batch: the MongoDB manual,
	// "Resume Tokens from aggregate" (#resume-tokens-from-aggregate),
	// Timestamp(1666277036, 2); also in Debezium's SourceInfoTest.
	v2PostBatch = "8263515EAC000000022B0429296E1404"
	// v1 events inside transactions, txnOpIndex 1 and 4: debezium/debezium
	// debezium-connector-mongodb/src/test/java/io/debezium/connector/mongodb/MongoUtilTest.java
	// (getChangeStreamTxnIdx_SupportsTransactionEvents).
	v1Txn1 = "8266561E1B000000062B022C01002B026E5A100433C2A58AB57149A3871DA09C9D3A899646645F6964006466561E1B5E1565D6F9200E230004"
	v1Txn4 = "8265F49506000007662B022C01002B086E5A1004448A9E1A91724ECA875AAFA40773D05C46645F6964006465F49506238B3BBCC1CB20C00004"
	// The same test's non-transaction event, one second earlier than v1Txn1.
	v1NoTxn = "8266561E1A000000062B022C0100296E5A1004479FFFE93A2F4CA0B70D131517A9885D463C5F6964003C696474657374000004"
	// v2 events inside transactions, txnOpIndex 1 and 9:
	// GPA-Gruppo-Progetti-Avanzati-SRL/tpm-mongo-common
	// changestream/keystring/keystring_test.go (resumeToken3, resumeToken4).
	v2Txn1 = "82673CAFCB000000012B042C01002B026E5A1004B7F96678E0A94E32A3EB62C43D9F997B463C6F7065726174696F6E54797065003C696E736572740046646F63756D656E744B65790046645F69640064673CAFCB4D1C2A354893DF51000004"
	v2Txn9 = "82673CB1EB000007482B042C01002B126E5A1004B7F96678E0A94E32A3EB62C43D9F997B463C6F7065726174696F6E54797065003C64656C6574650046646F63756D656E744B65790046645F69640064673C9B7E3C24CD24B583A0DA000004"
	// A collection's insert, update, drop and the invalidate that follows
	// the drop at the same cluster time Timestamp(1721140162, 5):
	// crate/commons-codec tests/transform/mongodb/test_mongodb_cdc.py
	// (MSG_INSERT, MSG_UPDATE, MSG_DROP, MSG_INVALIDATE).
	v2Insert     = "82669683C2000000022B042C0100296E5A1004413F85D5B4CF4680AA4D17641E9DF22D463C6F7065726174696F6E54797065003C696E736572740046646F63756D656E744B65790046645F69640064669683C2B0750B2C84893F3E000004"
	v2Update     = "82669683C2000000032B042C0100296E5A1004413F85D5B4CF4680AA4D17641E9DF22D463C6F7065726174696F6E54797065003C7570646174650046646F63756D656E744B65790046645F69640064669683C2B0750B2C84893F3E000004"
	v2Drop       = "82669683C2000000052B042C0100296E5A1004413F85D5B4CF4680AA4D17641E9DF22D463C6F7065726174696F6E54797065003C64726F70000004"
	v2Invalidate = "82669683C2000000052B042C0100296F5A1004413F85D5B4CF4680AA4D17641E9DF22D463C6F7065726174696F6E54797065003C64726F70000004"
	// MongoDB 4.0 (v0) event: ververica/flink-cdc-connectors
	// flink-connector-mongodb-cdc/.../source/utils/ResumeTokenUtilsTest.java
	// (testDecodeHexFormatV0), Timestamp(1666691204, 1).
	v0Event = "826357B0840000000129295A1004461ECCED47A6420D9713A5135650360746645F696400646357B05F35C6AE07E1E6C7390004"
)

func ts(t, i uint32) bson.Timestamp { return bson.Timestamp{T: t, I: i} }

func TestDecodeRealTokens(t *testing.T) {
	tests := []struct {
		name string
		data string
		want Position
	}{
		{"v1 event", v1Event, Position{ClusterTime: ts(1630438675, 1), Version: 1, TokenType: Event}},
		{"v1 high-water mark", v1HighWaterMark, Position{ClusterTime: ts(1630496062, 2), Version: 1, TokenType: HighWaterMark}},
		{"v2 event", v2Event, Position{ClusterTime: ts(1666193824, 1), Version: 2, TokenType: Event}},
		{"v2 postBatchResumeToken", v2PostBatch, Position{ClusterTime: ts(1666277036, 2), Version: 2, TokenType: HighWaterMark}},
		{"v1 transaction op 1", v1Txn1, Position{ClusterTime: ts(1716919835, 6), Version: 1, TokenType: Event, TxnOpIndex: 1}},
		{"v1 transaction op 4", v1Txn4, Position{ClusterTime: ts(1710527750, 1894), Version: 1, TokenType: Event, TxnOpIndex: 4}},
		{"v1 outside a transaction", v1NoTxn, Position{ClusterTime: ts(1716919834, 6), Version: 1, TokenType: Event}},
		{"v2 transaction op 1", v2Txn1, Position{ClusterTime: ts(1732030411, 1), Version: 2, TokenType: Event, TxnOpIndex: 1}},
		{"v2 transaction op 9", v2Txn9, Position{ClusterTime: ts(1732030955, 1864), Version: 2, TokenType: Event, TxnOpIndex: 9}},
		{"v2 drop", v2Drop, Position{ClusterTime: ts(1721140162, 5), Version: 2, TokenType: Event}},
		{"v2 invalidate", v2Invalidate, Position{ClusterTime: ts(1721140162, 5), Version: 2, TokenType: Event, FromInvalidate: true}},
		{"v0 event", v0Event, Position{ClusterTime: ts(1666691204, 1), Version: 0, TokenType: Event}},
		{"lower-case hex", strings.ToLower(v2PostBatch), Position{ClusterTime: ts(1666277036, 2), Version: 2, TokenType: HighWaterMark}},
		// Only the prefix is needed: whatever follows fromInvalidate is
		// somebody else's business (the stand-in's, a future server's).
		{"trailing fields ignored", "82612E8513000000012B022C0100296EFFFFFF", Position{ClusterTime: ts(1630438675, 1), Version: 1, TokenType: Event}},
		{"prefix only", "82612E8513000000012B022C0100296E", Position{ClusterTime: ts(1630438675, 1), Version: 1, TokenType: Event}},
		{"large txnOpIndex", "82612E8513000000012B022C01002C07D06E04", Position{ClusterTime: ts(1630438675, 1), Version: 1, TokenType: Event, TxnOpIndex: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got != tt.want {
				t.Errorf("Decode = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeToken(t *testing.T) {
	raw, err := bson.Marshal(bson.D{{Key: "_data", Value: v2PostBatch}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeToken(raw)
	if err != nil {
		t.Fatalf("DecodeToken: %v", err)
	}
	if want := ts(1666277036, 2); got.ClusterTime != want || got.TokenType != HighWaterMark {
		t.Errorf("DecodeToken = %+v", got)
	}

	for name, doc := range map[string]bson.D{
		"no _data":      {{Key: "x", Value: "1"}},
		"binary _data":  {{Key: "_data", Value: bson.Binary{Data: []byte{0x82}}}},
		"bad hex _data": {{Key: "_data", Value: "82zz"}},
	} {
		raw, err := bson.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeToken(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name, data, wantMsg string
	}{
		{"empty", "", "shorter than"},
		{"type byte only", "82", "shorter than"},
		{"not hex", "82612E85130000000Z2B02", "not hex"},
		{"odd length", "8266561E1B000000062", "not hex"},
		{"not a timestamp", "83612E8513000000012B022C0100296E04", "want 0x82"},
		{"keystring end instead of version", "82612E85130000000104", "ends before version"},
		{"nothing after timestamp", "82612E851300000001", "ends after 9 bytes"},
		{"truncated inside tokenType", "8266561E1B000000062B022C", "ends after"},
		{"truncated before fromInvalidate", "82612E8513000000012B022C010029", "ends after"},
		{"version is a string", "82612E85130000000146", "version has type byte 0x46"},
		{"version has a fraction", "82612E8513000000012B03", "version is not an integer"},
		{"future version", "82612E8513000000012B062C0100296E04", "version 3"},
		{"unknown tokenType", "82612E8513000000012B022B0A296E04", "tokenType 5"},
		{"negative txnOpIndex", "82612E8513000000012B022C0100270D6E04", "want a non-negative integer"},
		{"txnOpIndex overflows int32", "82612E8513000000012B022C0100310100000000000000006E04", "does not fit"},
		{"fromInvalidate not a bool", "82612E8513000000012B022C01002929", "fromInvalidate has type byte 0x29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.data)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%q) err = %v, want ErrMalformed", tt.data, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Decode(%q) err = %q, want it to mention %q", tt.data, err, tt.wantMsg)
			}
		})
	}
}

func mustDecode(t *testing.T, data string) Position {
	t.Helper()
	p, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode(%s): %v", data, err)
	}
	return p
}

func TestCompare(t *testing.T) {
	// Each list is in stream order.
	orders := map[string][]string{
		"one collection's history":   {v2Insert, v2Update, v2Drop, v2Invalidate},
		"transaction ops":            {v1NoTxn, v1Txn1},
		"v2 transaction ops":         {v2Txn1, v2Txn9},
		"documented event then PBRT": {v2Event, v2PostBatch},
	}
	for name, order := range orders {
		for i := range order {
			for j := range order {
				a, b := mustDecode(t, order[i]), mustDecode(t, order[j])
				want := cmpInt(i, j)
				if got := Compare(a, b); got != want {
					t.Errorf("%s: Compare(#%d %v, #%d %v) = %d, want %d", name, i, a, j, b, got, want)
				}
			}
		}
	}

	at := ts(1721140162, 5)
	hwm := Position{ClusterTime: at, Version: 2, TokenType: HighWaterMark}
	event := mustDecode(t, v2Drop)
	if Compare(hwm, event) != -1 || Compare(event, hwm) != 1 {
		t.Errorf("a high-water mark must sort before an event at the same cluster time")
	}
	// Events at an earlier time sort before the mark, whatever their txnOpIndex.
	earlier := Position{ClusterTime: ts(1721140162, 4), Version: 2, TokenType: Event, TxnOpIndex: 7}
	if Compare(earlier, hwm) != -1 {
		t.Errorf("an event before the mark's time must sort before it")
	}
	// The version is not part of the order: a v1 and a v2 token of one
	// event are the same position.
	v1 := Position{ClusterTime: at, Version: 1, TokenType: Event}
	if Compare(v1, event) != 0 {
		t.Errorf("Compare(v1, v2 of one event) = %d, want 0", Compare(v1, event))
	}
}

func TestStartAtOperationTime(t *testing.T) {
	committed := mustDecode(t, v1Txn4)
	start := committed.StartAtOperationTime()
	if start != committed.ClusterTime {
		t.Fatalf("StartAtOperationTime = %v, want the cluster time %v", start, committed.ClusterTime)
	}
	// The stream reopened there begins with a high-water mark at that time,
	// which sorts before the committed event: nothing after it is skipped,
	// and the caller drops what compares at or before the committed one.
	mark := Position{ClusterTime: start, Version: 1, TokenType: HighWaterMark}
	if Compare(mark, committed) >= 0 {
		t.Errorf("reopening at %v would skip the committed transaction's earlier ops", start)
	}
}

func TestPositionString(t *testing.T) {
	got := mustDecode(t, v1Txn4).String()
	want := "Timestamp(1710527750, 1894) 2024-03-15T18:35:50Z event txnOpIndex=4"
	if got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got := mustDecode(t, v2Invalidate).String(); !strings.HasSuffix(got, "event fromInvalidate") {
		t.Errorf("String = %q, want it to end with fromInvalidate", got)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{v1Event, v1HighWaterMark, v2Event, v2PostBatch, v1Txn4, v2Invalidate, v0Event} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		p, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if p.TxnOpIndex < 0 || p.Version < 0 || p.Version > maxSupportedTokenVersion {
			t.Fatalf("decoded an impossible position %+v", p)
		}
		if Compare(p, p) != 0 {
			t.Fatalf("Compare(p, p) != 0 for %+v", p)
		}
	})
}
