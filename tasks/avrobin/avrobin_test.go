package avrobin

import (
	"bytes"
	"math"
	"testing"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"long 0", AppendLong(nil, 0), []byte{0}},
		{"long -1", AppendLong(nil, -1), []byte{1}},
		{"long 1", AppendLong(nil, 1), []byte{2}},
		{"long 64", AppendLong(nil, 64), []byte{0x80, 1}},
		{"long min", AppendLong(nil, math.MinInt64), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1}},
		{"string", AppendString(nil, "ab"), []byte{4, 'a', 'b'}},
		{"bytes", AppendBytes(nil, []byte{9}), []byte{2, 9}},
		{"prefix", PrefixLength(append([]byte{7}, bytes.Repeat([]byte{'x'}, 70)...), 1),
			append([]byte{7, 0x8c, 1}, bytes.Repeat([]byte{'x'}, 70)...)},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s = %x, want %x", tt.name, tt.got, tt.want)
		}
	}
}
