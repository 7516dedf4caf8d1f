// Package resumetoken decodes MongoDB change stream resume tokens into
// positions that can be compared, because token strings cannot.
//
// A resume token is {_data: "<hex>"}: the hex is a MongoDB KeyString (V1) of
// the values clusterTime, version, tokenType (v1+), txnOpIndex, fromInvalidate
// (v1+), collection UUID and event identifier, in that order (see
// src/mongo/db/pipeline/resume_token.cpp, ResumeToken::getData, and
// src/mongo/db/storage/key_string/key_string.cpp). The decoder reads only the
// leading fields a position needs. It is strict about those (the 0x82
// timestamp type byte, the 8-byte timestamp, integer and boolean encodings,
// known versions) and tolerant about whatever follows them, so a UUID,
// document key, operation description or fragment number of any shape never
// stops a task from resuming.
//
// The BinData form of _data used by MongoDB 3.6 is not supported: the Go
// driver needs MongoDB 4.4 or later, which always sends the hex form.
package resumetoken

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrMalformed is wrapped by every error that reports an undecodable token.
var ErrMalformed = errors.New("malformed resume token")

// TokenType tells an event's token from a point in time.
type TokenType uint8

// The values are the server's ResumeTokenData::TokenType, which is also the
// order the server sorts them in at one cluster time.
const (
	// HighWaterMark is a token for a point in time rather than an event:
	// postBatchResumeToken of an empty batch, startAtOperationTime.
	HighWaterMark TokenType = 0
	// Event is the token of a change event (its _id).
	Event TokenType = 128
)

// String returns "event" or "high-water-mark".
func (t TokenType) String() string {
	switch t {
	case HighWaterMark:
		return "high-water-mark"
	case Event:
		return "event"
	default:
		return fmt.Sprintf("TokenType(%d)", uint8(t))
	}
}

// Position is where in a change stream a resume token points.
type Position struct {
	// ClusterTime is the commit time of the event's oplog entry; every
	// event of one transaction shares it.
	ClusterTime bson.Timestamp
	// Version is the token format version: 0 (MongoDB 4.0), 1 (4.2+) or 2
	// (6.0+ with showExpandedEvents, 7.0+ by default).
	Version int
	// TokenType is Event or HighWaterMark; version 0 tokens are always
	// Event.
	TokenType TokenType
	// TxnOpIndex orders the events of one transaction (0 outside one).
	TxnOpIndex int
	// FromInvalidate marks the token of an invalidate event, which sorts
	// after the event that caused it (drop, rename) at the same time.
	FromInvalidate bool
}

// KeyString type bytes (key_string.cpp, namespace CType) the decoder meets.
const (
	ctypeNumericZero         = 41 // kNumericZero
	ctypeNumericPositive1    = 43 // kNumericPositive1ByteInt
	ctypeNumericPositive8    = 50 // kNumericPositive8ByteInt
	ctypeBoolFalse           = 110
	ctypeBoolTrue            = 111
	ctypeTimestamp           = 130 // 0x82
	keyStringEnd             = 4   // kEnd
	maxSupportedTokenVersion = 2
)

// Decode decodes the hex string of a token's _data field.
func Decode(data string) (Position, error) {
	var p Position
	if len(data) < 18 {
		return p, fmt.Errorf("%w: %q is shorter than the 18 hex digits of a type byte and timestamp", ErrMalformed, data)
	}
	buf, err := hex.DecodeString(data)
	if err != nil {
		return p, fmt.Errorf("%w: _data is not hex: %v", ErrMalformed, err)
	}
	r := reader{buf: buf}

	if b := r.byte(); b != ctypeTimestamp {
		return p, fmt.Errorf("%w: starts with byte 0x%02X, want 0x82 (a timestamp)", ErrMalformed, b)
	}
	ts := binary.BigEndian.Uint64(r.next(8))
	p.ClusterTime = bson.Timestamp{T: uint32(ts >> 32), I: uint32(ts)}

	version, err := r.int("version")
	if err != nil {
		return p, err
	}
	if version > maxSupportedTokenVersion {
		return p, fmt.Errorf("%w: version %d is newer than the versions 0-%d this build understands", ErrMalformed, version, maxSupportedTokenVersion)
	}
	p.Version = version

	p.TokenType = Event
	if version >= 1 {
		tt, err := r.int("tokenType")
		if err != nil {
			return p, err
		}
		if tt != int(HighWaterMark) && tt != int(Event) {
			return p, fmt.Errorf("%w: tokenType %d is neither 0 (high-water mark) nor 128 (event)", ErrMalformed, tt)
		}
		p.TokenType = TokenType(tt)
	}

	if p.TxnOpIndex, err = r.int("txnOpIndex"); err != nil {
		return p, err
	}

	if version >= 1 {
		switch b := r.byte(); b {
		case ctypeBoolFalse:
		case ctypeBoolTrue:
			p.FromInvalidate = true
		default:
			return p, r.unexpected("fromInvalidate", b, "a boolean")
		}
	}
	return p, r.err
}

// DecodeToken decodes a token document as the driver returns it
// (ChangeStream.ResumeToken, an event's _id): {_data: "<hex>"}.
func DecodeToken(token bson.Raw) (Position, error) {
	v, err := token.LookupErr("_data")
	if err != nil {
		return Position{}, fmt.Errorf("%w: no _data field in %s", ErrMalformed, token)
	}
	s, ok := v.StringValueOK()
	if !ok {
		return Position{}, fmt.Errorf("%w: _data is a %s, want a hex string", ErrMalformed, v.Type)
	}
	return Decode(s)
}

// Compare returns -1, 0 or +1 as a sorts before, with or after b in a
// change stream. It follows the server's own resume check
// (compareAgainstClientResumeToken in
// document_source_change_stream_check_resumability.cpp): cluster time first,
// then token type, so a high-water mark at time T sorts before every event at
// T (startAtOperationTime T therefore includes the events at T), then
// txnOpIndex, then fromInvalidate. The version is not compared, as the server
// does not compare it either. Two events that differ only in their document
// key compare equal; on one collection's stream that happens only for the
// fragments of one split event, which share a position.
func Compare(a, b Position) int {
	if c := a.ClusterTime.Compare(b.ClusterTime); c != 0 {
		return c
	}
	if a.TokenType != b.TokenType {
		return cmpInt(int(a.TokenType), int(b.TokenType))
	}
	if c := cmpInt(a.TxnOpIndex, b.TxnOpIndex); c != 0 {
		return c
	}
	if a.FromInvalidate != b.FromInvalidate {
		if a.FromInvalidate {
			return 1
		}
		return -1
	}
	return 0
}

// StartAtOperationTime returns the timestamp to reopen a change stream at with
// startAtOperationTime when resuming from the token itself is impossible
// (error 280 after a pipeline edit). The server starts such a stream with a
// high-water mark at that time, so the events at p's cluster time are read
// again: the caller must skip those that Compare at or before p.
func (p Position) StartAtOperationTime() bson.Timestamp {
	return p.ClusterTime
}

// Time returns the cluster time's wall-clock second, in UTC.
func (p Position) Time() time.Time {
	return time.Unix(int64(p.ClusterTime.T), 0).UTC()
}

// String formats p for people: cluster time, its UTC time, and the fields
// that order events sharing it.
func (p Position) String() string {
	s := fmt.Sprintf("Timestamp(%d, %d) %s %s", p.ClusterTime.T, p.ClusterTime.I,
		p.Time().Format(time.RFC3339), p.TokenType)
	if p.TxnOpIndex != 0 {
		s += fmt.Sprintf(" txnOpIndex=%d", p.TxnOpIndex)
	}
	if p.FromInvalidate {
		s += " fromInvalidate"
	}
	return s
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	default:
		return 0
	}
}

// reader walks a KeyString; the first failure sticks in err and every later
// read returns zero values, so Decode checks once per field.
type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if len(r.buf)-r.off < n {
		r.err = fmt.Errorf("%w: ends after %d bytes, inside a field that needs %d more", ErrMalformed, len(r.buf), n-(len(r.buf)-r.off))
		return make([]byte, n)
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) byte() byte { return r.next(1)[0] }

func (r *reader) unexpected(field string, b byte, want string) error {
	if r.err != nil {
		return r.err
	}
	if b == keyStringEnd && r.off == len(r.buf) {
		return fmt.Errorf("%w: ends before %s", ErrMalformed, field)
	}
	return fmt.Errorf("%w: %s has type byte 0x%02X at offset %d, want %s", ErrMalformed, field, b, r.off-1, want)
}

// int reads a non-negative NumberInt. KeyString stores a positive integer as
// the type byte 43+n-1 followed by n big-endian bytes of value<<1; the low bit
// flags a fractional part, which an integer field must not have.
func (r *reader) int(field string) (int, error) {
	b := r.byte()
	if r.err != nil {
		return 0, r.err
	}
	switch {
	case b == ctypeNumericZero:
		return 0, nil
	case b >= ctypeNumericPositive1 && b <= ctypeNumericPositive8:
		var v uint64
		for _, x := range r.next(int(b-ctypeNumericPositive1) + 1) {
			v = v<<8 | uint64(x)
		}
		if r.err != nil {
			return 0, r.err
		}
		if v&1 != 0 {
			return 0, fmt.Errorf("%w: %s is not an integer", ErrMalformed, field)
		}
		v >>= 1
		if v > 1<<31-1 {
			return 0, fmt.Errorf("%w: %s %d does not fit a 32-bit integer", ErrMalformed, field, v)
		}
		return int(v), nil
	default:
		return 0, r.unexpected(field, b, "a non-negative integer")
	}
}
