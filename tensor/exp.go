package tensor

import "math"

// exp is e^x for the arguments softmax gives it (x <= 0 after the max is subtracted; any x
// works), accurate to float32 precision and about three times as fast as math.Exp: x = k ln2
// + r with |r| <= ln2/2, e^r by its Taylor series to r^7 (relative error < 1e-8), times 2^k.
func exp(x float64) float64 {
	switch {
	case x != x || x > 700:
		return math.Exp(x) // NaN, overflow
	case x < -700:
		return 0
	}
	const (
		log2e = 1.4426950408889634
		ln2hi = 6.93147180369123816490e-01
		ln2lo = 1.90821492927058770002e-10
	)
	h := 0.5
	if x < 0 {
		h = -0.5
	}
	k := float64(int64(x*log2e + h)) // x*log2e rounded to the nearest integer
	r := x - k*ln2hi - k*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return p * math.Float64frombits(uint64(int64(k)+1023)<<52)
}
