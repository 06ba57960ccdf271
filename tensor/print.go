package tensor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// printMax is the size above which String shows only the first and last edgeItems of each
// long axis (torch's threshold and edgeitems).
const (
	printMax  = 1000
	edgeItems = 3
)

// String prints the shape (and axis names) and then the values as nested brackets, like
// torch: tensors of more than 1000 values show the first and last 3 of each long axis.
//
//	float32[2 3] (pos, embd)
//	[[ 0.1000, -2.0000,  3.5000],
//	 [ 1.0000,  0.0000, -1.0000]]
func (t *Tensor) String() string {
	var b strings.Builder
	kind := "float32"
	if t.isInt {
		kind = "int"
	}
	b.WriteString(t.header(kind))
	b.WriteByte('\n')
	summarize := len(t.data) > printMax
	var vals []float32
	t.visit(0, 0, summarize, func(v float32) { vals = append(vals, v) })
	format := numberFormat(vals, t.isInt)
	width := 0
	for _, v := range vals {
		width = max(width, len(format(v)))
	}
	cell := func(v float32) string {
		s := format(v)
		return strings.Repeat(" ", width-len(s)) + s
	}
	if t.Rank() == 0 {
		b.WriteString(cell(t.data[0]))
		return b.String()
	}
	t.write(&b, 0, 0, summarize, cell)
	return b.String()
}

func (t *Tensor) header(kind string) string {
	dims := make([]string, len(t.shape))
	for i, d := range t.shape {
		dims[i] = strconv.Itoa(d)
	}
	h := kind + "[" + strings.Join(dims, " ") + "]"
	if t.axes != nil {
		h += " (" + t.axisList() + ")"
	}
	return h
}

// shown is the indices of an axis of size n that String prints; -1 marks the "...".
func shown(n int, summarize bool) []int {
	var idx []int
	if summarize && n > 2*edgeItems {
		for i := 0; i < edgeItems; i++ {
			idx = append(idx, i)
		}
		idx = append(idx, -1)
		for i := n - edgeItems; i < n; i++ {
			idx = append(idx, i)
		}
		return idx
	}
	for i := 0; i < n; i++ {
		idx = append(idx, i)
	}
	return idx
}

// visit calls fn with every printed value in order.
func (t *Tensor) visit(d, off int, summarize bool, fn func(float32)) {
	if d == t.Rank() {
		fn(t.data[off])
		return
	}
	inner := size(t.shape[d+1:])
	for _, i := range shown(t.shape[d], summarize) {
		if i >= 0 {
			t.visit(d+1, off+i*inner, summarize, fn)
		}
	}
}

func (t *Tensor) write(b *strings.Builder, d, off int, summarize bool, cell func(float32) string) {
	b.WriteByte('[')
	inner := size(t.shape[d+1:])
	last := d == t.Rank()-1
	sep := ", "
	if !last {
		sep = "," + strings.Repeat("\n", t.Rank()-d-1) + strings.Repeat(" ", d+1)
	}
	for n, i := range shown(t.shape[d], summarize) {
		if n > 0 {
			b.WriteString(sep)
		}
		switch {
		case i < 0:
			b.WriteString("...")
		case last:
			b.WriteString(cell(t.data[off+i]))
		default:
			t.write(b, d+1, off+i*inner, summarize, cell)
		}
	}
	b.WriteByte(']')
}

// numberFormat picks fixed or scientific notation for the printed values, as torch does.
func numberFormat(vals []float32, isInt bool) func(float32) string {
	if isInt {
		return func(v float32) string { return strconv.Itoa(int(v)) }
	}
	maxAbs, minAbs := 0.0, math.Inf(1)
	for _, v := range vals {
		a := math.Abs(float64(v))
		if math.IsInf(a, 0) || math.IsNaN(a) {
			continue
		}
		maxAbs = max(maxAbs, a)
		if a > 0 {
			minAbs = min(minAbs, a)
		}
	}
	if maxAbs >= 1e5 || minAbs < 1e-4 {
		return func(v float32) string { return fmt.Sprintf("%.4e", v) }
	}
	return func(v float32) string { return strconv.FormatFloat(float64(v), 'f', 4, 32) }
}
