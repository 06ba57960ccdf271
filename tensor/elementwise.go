package tensor

import (
	"math"
	"slices"
)

// Elementwise arithmetic broadcasts as numpy does: shapes are aligned at their last axes,
// and an axis of size 1 (or a missing leading axis) repeats to match the other operand.
// The other operand may be a *Tensor or a Go number (float32, float64, int).

// Add is t + x.
func (t *Tensor) Add(x any) *Tensor {
	return binary("Add", t, x, true, func(a, b float32) float32 { return a + b })
}

// Sub is t - x.
func (t *Tensor) Sub(x any) *Tensor {
	return binary("Sub", t, x, true, func(a, b float32) float32 { return a - b })
}

// Mul is t * x.
func (t *Tensor) Mul(x any) *Tensor {
	return binary("Mul", t, x, true, func(a, b float32) float32 { return a * b })
}

// Div is t / x (float, also for integer tensors).
func (t *Tensor) Div(x any) *Tensor {
	return binary("Div", t, x, false, func(a, b float32) float32 { return a / b })
}

// Maximum is the larger of t and x at each position.
func (t *Tensor) Maximum(x any) *Tensor {
	return binary("Maximum", t, x, true, func(a, b float32) float32 { return max(a, b) })
}

// Minimum is the smaller of t and x at each position.
func (t *Tensor) Minimum(x any) *Tensor {
	return binary("Minimum", t, x, true, func(a, b float32) float32 { return min(a, b) })
}

// operand turns an Add/Sub/... argument into a tensor.
func operand(op string, x any) *Tensor {
	switch v := x.(type) {
	case *Tensor:
		if v == nil {
			fail(op, "the other operand is a nil *Tensor")
		}
		return v
	case float32:
		return Scalar(v)
	case float64:
		return Scalar(float32(v))
	case int:
		s := Scalar(intValue(op, int64(v)))
		s.isInt = true
		return s
	}
	fail(op, "the other operand is a %T; give a *tensor.Tensor, float32, float64 or int", x)
	return nil
}

// broadcastShape is numpy's broadcast of two shapes, or a failure naming the axis.
func broadcastShape(op string, a, b *Tensor) []int {
	r := max(a.Rank(), b.Rank())
	out := make([]int, r)
	for i := 1; i <= r; i++ {
		da, db := 1, 1
		if i <= a.Rank() {
			da = a.shape[a.Rank()-i]
		}
		if i <= b.Rank() {
			db = b.shape[b.Rank()-i]
		}
		switch {
		case da == db || db == 1:
			out[r-i] = da
		case da == 1:
			out[r-i] = db
		default:
			fail(op, "shapes %s and %s do not broadcast: axis %d (from the end) has size %d vs %d; sizes must match or one be 1",
				a.describe(), b.describe(), -i, da, db)
		}
	}
	return out
}

// broadcastStrides are t's strides read as the axes of shape (0 where t repeats).
func broadcastStrides(t *Tensor, shape []int) []int {
	s := make([]int, len(shape))
	own := stridesOf(t.shape)
	off := len(shape) - t.Rank()
	for i := range t.shape {
		if t.shape[i] != 1 {
			s[off+i] = own[i]
		}
	}
	return s
}

// broadcastAxes keeps axis names that the operands agree on; a conflict drops them all.
func broadcastAxes(a, b *Tensor, r int) []string {
	var names []string
	for _, t := range []*Tensor{a, b} {
		if t.axes == nil {
			continue
		}
		if t.Rank() != r {
			continue
		}
		if names != nil && !slices.Equal(names, t.axes) {
			return nil
		}
		names = t.axes
	}
	return slices.Clone(names)
}

func binary(op string, t *Tensor, x any, keepInt bool, f func(a, b float32) float32) *Tensor {
	o := operand(op, x)
	shape := broadcastShape(op, t, o)
	u := &Tensor{shape: shape, axes: broadcastAxes(t, o, len(shape)), isInt: keepInt && t.isInt && o.isInt}
	out := make([]float32, size(shape))
	switch {
	case slices.Equal(t.shape, o.shape):
		for i, a := range t.data {
			out[i] = f(a, o.data[i])
		}
	case len(o.data) == 1 && slices.Equal(t.shape, shape):
		b := o.data[0]
		for i, a := range t.data {
			out[i] = f(a, b)
		}
	default:
		a := gather(t.data, shape, broadcastStrides(t, shape))
		b := gather(o.data, shape, broadcastStrides(o, shape))
		for i := range out {
			out[i] = f(a[i], b[i])
		}
	}
	u.data = out
	return u
}

// BroadcastTo repeats t to shape, by the rules of elementwise arithmetic.
func (t *Tensor) BroadcastTo(shape ...int) *Tensor {
	target := &Tensor{shape: shape}
	got := broadcastShape("BroadcastTo", t, target)
	if !slices.Equal(got, shape) {
		fail("BroadcastTo", "shape %s does not broadcast to %v", t.describe(), shape)
	}
	u := &Tensor{shape: slices.Clone(shape), isInt: t.isInt, data: gather(t.data, shape, broadcastStrides(t, shape))}
	if t.Rank() == len(shape) {
		u.axes = slices.Clone(t.axes)
	}
	return u
}

func (t *Tensor) unary(f func(float32) float32, keepInt bool) *Tensor {
	out := make([]float32, len(t.data))
	for i, v := range t.data {
		out[i] = f(v)
	}
	return &Tensor{shape: slices.Clone(t.shape), axes: slices.Clone(t.axes), data: out, isInt: keepInt && t.isInt}
}

// Map applies f to every value.
func (t *Tensor) Map(f func(float32) float32) *Tensor { return t.unary(f, false) }

// Neg is -t.
func (t *Tensor) Neg() *Tensor { return t.unary(func(v float32) float32 { return -v }, true) }

// Abs is |t|.
func (t *Tensor) Abs() *Tensor {
	return t.unary(func(v float32) float32 { return float32(math.Abs(float64(v))) }, true)
}

// Exp is e^t.
func (t *Tensor) Exp() *Tensor {
	return t.unary(func(v float32) float32 { return float32(math.Exp(float64(v))) }, false)
}

// Log is the natural logarithm.
func (t *Tensor) Log() *Tensor {
	return t.unary(func(v float32) float32 { return float32(math.Log(float64(v))) }, false)
}

// Sqrt is the square root.
func (t *Tensor) Sqrt() *Tensor {
	return t.unary(func(v float32) float32 { return float32(math.Sqrt(float64(v))) }, false)
}

// Pow is t^p.
func (t *Tensor) Pow(p float64) *Tensor {
	return t.unary(func(v float32) float32 { return float32(math.Pow(float64(v), p)) }, false)
}

// Float is t's values as floats (an integer tensor's values, no longer marked as integers).
func (t *Tensor) Float() *Tensor { return t.unary(func(v float32) float32 { return v }, false) }

// Stack joins tensors of one shape along a new axis: Stack(layers, 0) of [pos, embd]
// values is [layer, pos, embd].
func Stack(ts []*Tensor, axis int) *Tensor {
	if len(ts) == 0 {
		fail("Stack", "no tensors to stack")
	}
	for i, x := range ts {
		if x == nil {
			fail("Stack", "tensor %d is nil", i)
		}
		if !slices.Equal(x.shape, ts[0].shape) {
			fail("Stack", "tensor %d has shape %s but tensor 0 has %s; stacked tensors must have one shape (Concat joins along an existing axis)",
				i, x.describe(), ts[0].describe())
		}
	}
	us := make([]*Tensor, len(ts))
	a := ts[0].Rank()
	if axis < -a-1 || axis > a {
		fail("Stack", "axis %d is out of range for a new axis of shape %s: valid are 0..%d or -%d..-1", axis, ts[0].describe(), a, a+1)
	}
	for i, x := range ts {
		us[i] = x.Unsqueeze(axis)
	}
	return concat("Stack", us, axis)
}

// Concat joins tensors along an existing axis; the other axes must match.
func Concat(ts []*Tensor, axis int) *Tensor {
	if len(ts) == 0 {
		fail("Concat", "no tensors to concatenate")
	}
	return concat("Concat", ts, axis)
}

func concat(op string, ts []*Tensor, axis int) *Tensor {
	a := ts[0].axis(op, axis)
	for i, x := range ts {
		if x == nil {
			fail(op, "tensor %d is nil", i)
		}
		same := x.Rank() == ts[0].Rank()
		for d := 0; same && d < x.Rank(); d++ {
			same = d == a || x.shape[d] == ts[0].shape[d]
		}
		if !same {
			fail(op, "tensor %d has shape %s but tensor 0 has %s; all axes but %d must match", i, x.describe(), ts[0].describe(), a)
		}
	}
	outer, _, inner := ts[0].split(a)
	shape := slices.Clone(ts[0].shape)
	shape[a] = 0
	isInt := true
	names := ts[0].axes
	for _, x := range ts {
		shape[a] += x.shape[a]
		isInt = isInt && x.isInt
		if !slices.Equal(x.axes, names) {
			names = nil
		}
	}
	out := make([]float32, 0, size(shape))
	for o := 0; o < outer; o++ {
		for _, x := range ts {
			blk := x.shape[a] * inner
			out = append(out, x.data[o*blk:(o+1)*blk]...)
		}
	}
	return &Tensor{shape: shape, axes: slices.Clone(names), data: out, isInt: isInt}
}

// CosineSim is the cosine similarity of a and b along axis (a and b broadcast against each
// other first): x·y / max(|x| |y|, 1e-8), as torch.nn.functional.cosine_similarity.
func CosineSim(a, b *Tensor, axis int) *Tensor {
	if a == nil || b == nil {
		fail("CosineSim", "nil tensor")
	}
	shape := broadcastShape("CosineSim", a, b)
	a, b = a.BroadcastTo(shape...), b.BroadcastTo(shape...)
	ax := a.axis("CosineSim", axis)
	dot := a.Mul(b).Sum(ax)
	den := a.Norm(ax).Mul(b.Norm(ax)).Maximum(float32(1e-8))
	return dot.Div(den)
}

// MatMul is the matrix product of t [n, k] (or a vector [k]) and x [k, m] (or [k]); leading
// axes of t are batch axes: [..., n, k] @ [k, m] is [..., n, m].
func (t *Tensor) MatMul(x *Tensor) *Tensor {
	if x == nil {
		fail("MatMul", "nil tensor")
	}
	if t.Rank() == 0 || x.Rank() == 0 || x.Rank() > 2 {
		fail("MatMul", "shapes %s and %s: MatMul takes [..., n, k] or [k] times [k, m] or [k]", t.describe(), x.describe())
	}
	k := t.shape[t.Rank()-1]
	if x.shape[0] != k {
		fail("MatMul", "shapes %s and %s: the last axis of the first (%d) must match the first axis of the second (%d)",
			t.describe(), x.describe(), k, x.shape[0])
	}
	m := 1
	if x.Rank() == 2 {
		m = x.shape[1]
	}
	rows := len(t.data) / max(k, 1)
	if k == 0 {
		rows = size(t.shape[:t.Rank()-1])
	}
	out := make([]float32, rows*m)
	acc := make([]float64, m)
	for r := 0; r < rows; r++ {
		clear(acc)
		for i, v := range t.data[r*k : (r+1)*k] {
			for j, w := range x.data[i*m : (i+1)*m] {
				acc[j] += float64(v) * float64(w)
			}
		}
		for j := range acc {
			out[r*m+j] = float32(acc[j])
		}
	}
	shape := slices.Clone(t.shape[:t.Rank()-1])
	var names []string
	if t.axes != nil {
		names = slices.Clone(t.axes[:t.Rank()-1])
	}
	if x.Rank() == 2 {
		shape = append(shape, m)
		if names != nil {
			last := ""
			if x.axes != nil {
				last = x.axes[1]
			}
			names = append(names, last)
		}
	}
	return &Tensor{shape: shape, axes: names, data: out}
}
