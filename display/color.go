package display

import (
	"fmt"
	"math"
)

// Colour scales: diverging blue–white–red centred at 0, or sequential white–red when no
// value is negative. The endpoints are ColorBrewer's RdBu.
var (
	white   = rgb{255, 255, 255}
	blue    = rgb{33, 102, 172}
	red     = rgb{178, 24, 43}
	nanGrey = rgb{204, 204, 204}
)

type rgb struct{ r, g, b uint8 }

func (c rgb) hex() string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

func lerp(a, b rgb, t float64) rgb {
	f := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + (float64(y)-float64(x))*t)) }
	return rgb{f(a.r, b.r), f(a.g, b.g), f(a.b, b.b)}
}

// scale maps values to colours.
type scale struct {
	lo, hi    float64 // finite range of the data
	diverging bool
	limit     float64 // the value drawn at full colour (>0), or 0 when all values are 0
}

// newScale fits a scale to the finite values of data.
func newScale(data []float32) scale {
	s := scale{lo: math.Inf(1), hi: math.Inf(-1)}
	for _, v := range data {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		s.lo = math.Min(s.lo, f)
		s.hi = math.Max(s.hi, f)
	}
	if s.lo > s.hi { // no finite values
		s.lo, s.hi = 0, 0
	}
	s.diverging = s.lo < 0
	s.limit = math.Max(math.Abs(s.lo), math.Abs(s.hi))
	return s
}

// probScale is the fixed sequential scale for probabilities (attention, logit lens), so
// that shades compare across heads and layers; values above 1 widen it.
func probScale(data []float32) scale {
	s := newScale(data)
	if s.diverging {
		return s
	}
	s.limit = math.Max(1, s.hi)
	return s
}

// color returns the colour of v.
func (s scale) color(v float32) rgb {
	f := float64(v)
	if math.IsNaN(f) {
		return nanGrey
	}
	if s.limit == 0 {
		return white
	}
	t := math.Max(-1, math.Min(1, f/s.limit))
	if t < 0 {
		return lerp(white, blue, -t)
	}
	return lerp(white, red, t)
}

// legendHTML draws the scale as a gradient bar between its end values.
func (s scale) legendHTML() string {
	lo, mid, hi := white.hex(), white.hex(), red.hex()
	left, right := 0.0, s.limit
	if s.diverging {
		lo = blue.hex()
		left = -s.limit
	}
	return fmt.Sprintf(`<div style="display:flex;align-items:center;gap:4px;font:11px monospace;margin:2px 0">`+
		`<span>%s</span><span style="display:inline-block;width:120px;height:8px;border:1px solid #ccc;`+
		`background:linear-gradient(to right,%s,%s,%s)"></span><span>%s</span></div>`,
		esc(num(float32(left))), lo, mid, hi, esc(num(float32(right))))
}
