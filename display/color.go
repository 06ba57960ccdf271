package display

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Colours: diverging blue–white–red around a centre, or sequential white–red from the low end
// to the high end. The endpoints are ColorBrewer's RdBu.
var (
	white   = rgb{255, 255, 255}
	blue    = rgb{33, 102, 172}
	red     = rgb{178, 24, 43}
	nanGrey = rgb{204, 204, 204}
)

type rgb struct{ r, g, b uint8 }

func (c rgb) hex() string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

// dark reports whether text on c should be white.
func (c rgb) dark() bool {
	return 0.299*float64(c.r)+0.587*float64(c.g)+0.114*float64(c.b) < 140
}

func lerp(a, b rgb, t float64) rgb {
	f := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + (float64(y)-float64(x))*t)) }
	return rgb{f(a.r, b.r), f(a.g, b.g), f(a.b, b.b)}
}

// Option changes how a heatmap, an attention pattern or a logit lens is coloured, labelled or
// titled. Without options a matrix whose values span both signs is diverging around 0, and any
// other is sequential from its minimum to its maximum.
type Option func(*options)

type options struct {
	kind               scaleKind
	center             float64
	hasCenter          bool
	min, max           float64
	hasMin, hasMax     bool
	shading            shading
	rowTitle, colTitle string
	valueTitle         string
	layer              int
	hasLayer           bool
}

type scaleKind int

const (
	autoScale scaleKind = iota
	sequentialScale
	divergingScale
)

type shading int

const (
	linearShading shading = iota
	logShading
	rankShading
)

// Diverging colours values below the centre (0 unless Center says otherwise) blue and above it
// red, with equal distances from the centre equally strong.
func Diverging() Option { return func(o *options) { o.kind = divergingScale } }

// Sequential colours from white at the minimum to red at the maximum.
func Sequential() Option { return func(o *options) { o.kind = sequentialScale } }

// Center makes the scale diverging around c (white at c).
func Center(c float64) Option {
	return func(o *options) { o.kind, o.center, o.hasCenter = divergingScale, c, true }
}

// Min fixes the value drawn at the low end of the colour bar (lower values are clamped).
func Min(v float64) Option { return func(o *options) { o.min, o.hasMin = v, true } }

// Max fixes the value drawn at the high end of the colour bar (higher values are clamped).
func Max(v float64) Option { return func(o *options) { o.max, o.hasMax = v, true } }

// LogShading shades by the logarithm of the values (sequential; values <= 0 are drawn as the
// smallest positive one), for probabilities spread over orders of magnitude.
func LogShading() Option { return func(o *options) { o.shading = logShading } }

// RankShading shades by each value's rank among the finite values (sequential), so that a few
// large values do not wash out the rest.
func RankShading() Option { return func(o *options) { o.shading = rankShading } }

// Axes titles the rows' axis (drawn on the left) and the columns' axis (drawn below).
func Axes(rowTitle, colTitle string) Option {
	return func(o *options) { o.rowTitle, o.colTitle = rowTitle, colTitle }
}

// ValueTitle titles the colour bar (what the colours measure).
func ValueTitle(title string) Option { return func(o *options) { o.valueTitle = title } }

// Layer names the layer an attention pattern comes from, in its titles ("layer 3, head 0").
func Layer(layer int) Option { return func(o *options) { o.layer, o.hasLayer = layer, true } }

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// scale maps values to colours and to positions along the colour bar (0 at the low end, 1 at
// the high end; 0.5 is the centre of a diverging scale).
type scale struct {
	kind    scaleKind // sequentialScale or divergingScale
	shading shading
	lo, hi  float64   // the values at the ends of the bar
	center  float64   // diverging only
	ranked  []float64 // rankShading: the finite values, sorted
}

// finiteRange returns the smallest and largest finite values; ok is false when there are none.
func finiteRange(data []float32) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range data {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	if lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}

// newScale fits a scale to the finite values of data: diverging around 0 when they span both
// signs, sequential from their minimum to their maximum otherwise, unless opts say otherwise.
func newScale(data []float32, opts ...Option) scale {
	return scaleFor(data, collect(opts))
}

func scaleFor(data []float32, o options) scale {
	lo, hi, _ := finiteRange(data)
	if o.hasMin {
		lo = o.min
	}
	if o.hasMax {
		hi = o.max
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	s := scale{kind: o.kind, shading: o.shading, lo: lo, hi: hi, center: o.center}
	if s.shading != linearShading {
		s.kind = sequentialScale
	}
	if s.kind == autoScale {
		s.kind = sequentialScale
		if lo < 0 && hi > 0 {
			s.kind, s.center = divergingScale, 0
		}
	}
	switch s.shading {
	case logShading:
		if s.lo <= 0 { // the smallest positive value
			pos := math.Inf(1)
			for _, v := range data {
				if f := float64(v); f > 0 && !math.IsInf(f, 1) {
					pos = math.Min(pos, f)
				}
			}
			if math.IsInf(pos, 1) {
				pos = 1
			}
			s.lo = pos
			s.hi = math.Max(s.hi, pos)
		}
	case rankShading:
		for _, v := range data {
			if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
				s.ranked = append(s.ranked, f)
			}
		}
		sort.Float64s(s.ranked)
	}
	if s.kind == divergingScale && !(o.hasMin && o.hasMax) {
		limit := math.Max(math.Abs(lo-s.center), math.Abs(hi-s.center))
		s.lo, s.hi = s.center-limit, s.center+limit
	}
	return s
}

// probScale is the fixed sequential 0..1 scale for probabilities (attention, logit lens), so
// that shades compare across heads and layers; values above 1 widen it; negative values (not
// probabilities) get the default scale.
func probScale(data []float32, opts ...Option) scale {
	o := collect(opts)
	lo, hi, _ := finiteRange(data)
	if o.kind == autoScale && o.shading == linearShading && lo >= 0 {
		if !o.hasMin {
			o.min, o.hasMin = 0, true
		}
		if !o.hasMax {
			o.max, o.hasMax = math.Max(1, hi), true
		}
	}
	return scaleFor(data, o)
}

// pos returns v's position along the bar, in [0, 1]; NaN for NaN.
func (s scale) pos(v float64) float64 {
	if math.IsNaN(v) {
		return math.NaN()
	}
	clamp := func(t float64) float64 { return math.Max(0, math.Min(1, t)) }
	switch s.shading {
	case logShading:
		if s.hi <= s.lo {
			return 0
		}
		v = math.Max(v, s.lo)
		return clamp((math.Log(v) - math.Log(s.lo)) / (math.Log(s.hi) - math.Log(s.lo)))
	case rankShading:
		n := len(s.ranked)
		if n < 2 {
			return 0
		}
		i := sort.SearchFloat64s(s.ranked, v) // first index >= v
		j := i
		for j < n && s.ranked[j] == v {
			j++
		}
		// Ties share their mean rank.
		r := float64(i+max(j-1, i)) / 2
		return clamp(r / float64(n-1))
	}
	if s.kind == divergingScale {
		switch {
		case v < s.center && s.center > s.lo:
			return clamp(0.5 - 0.5*(s.center-v)/(s.center-s.lo))
		case v > s.center && s.hi > s.center:
			return clamp(0.5 + 0.5*(v-s.center)/(s.hi-s.center))
		}
		return 0.5
	}
	if s.hi <= s.lo {
		return 0
	}
	return clamp((v - s.lo) / (s.hi - s.lo))
}

// colorAt returns the colour at position t of the bar.
func (s scale) colorAt(t float64) rgb {
	if math.IsNaN(t) {
		return nanGrey
	}
	if s.kind == divergingScale {
		if t < 0.5 {
			return lerp(white, blue, (0.5-t)*2)
		}
		return lerp(white, red, (t-0.5)*2)
	}
	return lerp(white, red, t)
}

// color returns the colour of v.
func (s scale) color(v float32) rgb { return s.colorAt(s.pos(float64(v))) }

// tick is a labelled position on the colour bar.
type tick struct {
	pos   float64
	label string
}

// ticks returns the colour bar's labelled values: round numbers within the range (powers of 10
// on a log scale, quantiles on a rank scale), always including both ends.
func (s scale) ticks() []tick {
	label := func(v float64) string { return num(float32(v)) }
	var out []tick
	add := func(v float64) {
		p := s.pos(v)
		for _, t := range out {
			if math.Abs(t.pos-p) < 0.08 {
				return
			}
		}
		out = append(out, tick{p, label(v)})
	}
	switch s.shading {
	case rankShading:
		n := len(s.ranked)
		if n == 0 {
			return []tick{{0, "0"}}
		}
		for _, q := range []float64{0, 0.25, 0.5, 0.75, 1} {
			i := int(math.Round(q * float64(n-1)))
			out = append(out, tick{q, label(s.ranked[i])})
		}
		return out
	case logShading:
		add(s.lo)
		add(s.hi)
		if s.hi > s.lo {
			for e := math.Ceil(math.Log10(s.lo)); e <= math.Floor(math.Log10(s.hi)); e++ {
				add(math.Pow(10, e))
			}
			if len(out) < 3 { // within one decade: the geometric middle
				add(math.Sqrt(s.lo * s.hi))
			}
		}
		return sortTicks(out)
	}
	add(s.lo)
	add(s.hi)
	if s.kind == divergingScale {
		add(s.center)
	}
	if s.hi > s.lo {
		step := niceStep((s.hi - s.lo) / 4)
		for v := math.Ceil(s.lo/step) * step; v <= s.hi+step*1e-9; v += step {
			if math.Abs(v) < step*1e-9 {
				v = 0
			}
			add(v)
		}
	}
	return sortTicks(out)
}

func sortTicks(t []tick) []tick {
	sort.Slice(t, func(i, j int) bool { return t[i].pos < t[j].pos })
	return t
}

// niceStep rounds x up to 1, 2 or 5 times a power of 10.
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// describe names the scale for alt texts and tests: "diverging around 0, -3..3".
func (s scale) describe() string {
	r := num(float32(s.lo)) + ".." + num(float32(s.hi))
	switch {
	case s.shading == logShading:
		return "log, " + r
	case s.shading == rankShading:
		return "rank, " + strconv.Itoa(len(s.ranked)) + " values"
	case s.kind == divergingScale:
		return "diverging around " + num(float32(s.center)) + ", " + r
	}
	return "sequential, " + r
}
