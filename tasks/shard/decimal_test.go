package shard

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// decimalReference is safeNumberLongForHash for a decimal128 written the slow, obvious way,
// with exact rational arithmetic: NaN is 0, non-canonical encodings are 0, values past the
// int64 range clamp, the rest rounds half to even.
func decimalReference(hi, lo uint64) int64 {
	negative := hi>>63 == 1
	switch {
	case hi>>58&0x1f == 0x1f:
		return 0
	case hi>>58&0x1f == 0x1e:
		if negative {
			return math.MinInt64
		}
		return math.MaxInt64
	case hi>>61&3 == 3:
		return 0
	}
	exp := int64(hi>>49&0x3fff) - 6176
	coef := new(big.Int).Lsh(new(big.Int).SetUint64(hi&(1<<49-1)), 64)
	coef.Or(coef, new(big.Int).SetUint64(lo))
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(34), nil)
	if coef.Cmp(limit) >= 0 {
		return 0
	}
	v := new(big.Rat).SetInt(coef)
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(abs(exp)), nil))
	if exp >= 0 {
		v.Mul(v, scale)
	} else {
		v.Quo(v, scale)
	}
	if negative {
		v.Neg(v)
	}
	if v.Cmp(new(big.Rat).SetInt64(math.MaxInt64)) > 0 {
		return math.MaxInt64
	}
	if v.Cmp(new(big.Rat).SetInt64(math.MinInt64)) < 0 {
		return math.MinInt64
	}
	// Round half to even: floor(v + 1/2), stepping back to even on an exact tie.
	half := big.NewRat(1, 2)
	up := new(big.Rat).Add(v, half)
	q := new(big.Int).Div(up.Num(), up.Denom()) // floor, Denom > 0
	if new(big.Rat).SetInt(q).Cmp(up) == 0 && q.Bit(0) == 1 {
		q.Sub(q, big.NewInt(1))
	}
	return q.Int64()
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestDecimalForHashMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for k := range 200000 {
		var hi, lo uint64
		switch k % 4 {
		case 0: // any bits at all
			hi, lo = rng.Uint64(), rng.Uint64()
		default: // canonical finite numbers with exponents where rounding and clamping happen
			exp := uint64(6176 + rng.IntN(60) - 40)
			digits := rng.IntN(35)
			coef := new(big.Int)
			for range digits {
				coef.Mul(coef, big.NewInt(10))
				coef.Add(coef, big.NewInt(int64(rng.IntN(10))))
			}
			if k%8 == 1 { // ties: ...5 followed by zeros
				coef.Mul(coef, big.NewInt(10))
				coef.Add(coef, big.NewInt(5))
			}
			if coef.BitLen() > 113 {
				continue
			}
			var word [16]byte
			coef.FillBytes(word[:])
			hi, lo = binary.BigEndian.Uint64(word[:8]), binary.BigEndian.Uint64(word[8:])
			hi |= exp << 49
			if rng.IntN(2) == 0 {
				hi |= 1 << 63
			}
		}
		if got, want := decimalForHash(hi, lo), decimalReference(hi, lo); got != want {
			t.Fatalf("decimal %#016x%016x: got %d, want %d", hi, lo, got, want)
		}
	}
}
