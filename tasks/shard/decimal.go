package shard

import (
	"math"
	"math/bits"
)

// maxPow10 is the largest n with 10^n in a uint64.
const maxPow10 = 19

// pow10 is 10^n for 0 <= n <= maxPow10.
func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

// maxCoefficient is 10^34 - 1 as (high, low) words: a decimal128 coefficient above it is a
// non-canonical encoding, which IEEE 754 (and the Intel library MongoDB uses) reads as zero.
const (
	maxCoefficientHi = 0x0001ed09bead87c0
	maxCoefficientLo = 0x378d8e63ffffffff
)

// decimalForHash converts an IEEE 754 BID decimal128 (high and low words, as BSON stores them
// little-endian) the way safeNumberLongForHash does for NumberDecimal: NaN is 0, values past
// the int64 range (infinities included) clamp to it, and everything else rounds to the nearest
// integer with ties to even (Decimal128::toLong's default), unlike doubles, which truncate:
// NumberDecimal("2.5") hashes as 2, 2.5 as a double also as 2, but NumberDecimal("2.7") as 3.
func decimalForHash(hi, lo uint64) int64 {
	negative := hi>>63 == 1
	var exp int
	var chi, clo uint64 // coefficient
	switch {
	case hi>>58&0x1f == 0x1f: // NaN, quiet or signalling
		return 0
	case hi>>58&0x1f == 0x1e: // infinity
		return clamp(negative)
	case hi>>61&3 == 3:
		// The "11" combination form has coefficients of 2^113 and more, all above
		// 10^34 - 1: non-canonical, hence zero.
		return 0
	default:
		exp = int(hi>>49&0x3fff) - 6176
		chi, clo = hi&(1<<49-1), lo
	}
	if chi > maxCoefficientHi || (chi == maxCoefficientHi && clo > maxCoefficientLo) {
		return 0 // non-canonical coefficient
	}
	if chi == 0 && clo == 0 {
		return 0
	}

	var mag uint64 // magnitude of the rounded value, valid unless overflow
	overflow := false
	switch {
	case exp >= 0:
		// An integer: coefficient × 10^exp, at least 10^exp.
		if exp > maxPow10 || chi != 0 {
			overflow = true
			break
		}
		h, l := bits.Mul64(clo, pow10(exp))
		overflow = h != 0
		mag = l
	case exp < -34:
		// The coefficient has at most 34 digits, so the value is below 0.1: rounds to 0.
		return 0
	default:
		// Divide by 10^(k-1), remembering whether anything non-zero was cut (sticky), then by
		// 10 for the rounding digit.
		k := -exp
		sticky := false
		for k > 1 {
			step := min(k-1, maxPow10)
			var r uint64
			chi, clo, r = div128by64(chi, clo, pow10(step))
			sticky = sticky || r != 0
			k -= step
		}
		var digit uint64
		chi, clo, digit = div128by64(chi, clo, 10)
		if digit > 5 || (digit == 5 && (sticky || clo&1 == 1)) {
			var carry uint64
			clo, carry = bits.Add64(clo, 1, 0)
			chi += carry
		}
		overflow = chi != 0
		mag = clo
	}

	switch {
	case overflow:
		return clamp(negative)
	case negative && mag >= 1<<63:
		return math.MinInt64
	case negative:
		return -int64(mag)
	case mag > math.MaxInt64:
		return math.MaxInt64
	default:
		return int64(mag)
	}
}

// clamp is the end of the int64 range on the value's side of zero.
func clamp(negative bool) int64 {
	if negative {
		return math.MinInt64
	}
	return math.MaxInt64
}

// div128by64 divides the 128-bit (hi, lo) by d, returning the 128-bit quotient and remainder.
func div128by64(hi, lo, d uint64) (qhi, qlo, r uint64) {
	qhi, r = hi/d, hi%d
	qlo, r = bits.Div64(r, lo, d)
	return qhi, qlo, r
}
