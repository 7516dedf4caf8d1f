package mongosink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// parsePlainJSON reads JSON that holds no Extended JSON (no key starting with "$") into the
// values bson.UnmarshalExtJSON gives in relaxed mode: objects as bson.D in their order, arrays
// as bson.A, integers as int32 when they fit and int64 otherwise, other numbers as float64.
// It is the hot path's reader: the driver's Extended JSON parser costs several times more.
// ok is false when b holds a "$" key, which only that parser reads right.
func parsePlainJSON(b []byte) (v any, ok bool, err error) {
	if bytes.Contains(b, []byte(`"$`)) {
		return nil, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err = plainValue(dec)
	if err != nil {
		return nil, true, fmt.Errorf("%w as JSON: %v", errNotRead, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, true, fmt.Errorf("%w as JSON: more than one JSON value", errNotRead)
	}
	return v, true, nil
}

func plainValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := bson.D{}
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := plainValue(dec)
				if err != nil {
					return nil, err
				}
				d = append(d, bson.E{Key: key.(string), Value: v})
			}
			_, err := dec.Token() // '}'
			return d, err
		case '[':
			a := bson.A{}
			for dec.More() {
				v, err := plainValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token() // ']'
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return plainNumber(t)
	}
	return tok, nil // string, bool, nil
}

// plainNumber types a number as relaxed Extended JSON does.
func plainNumber(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			return int32(i), nil
		}
		return i, nil
	}
	return n.Float64()
}
