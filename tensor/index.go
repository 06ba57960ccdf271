package tensor

import (
	"slices"
)

// index normalizes a possibly negative index into an axis of size n, or fails.
func (t *Tensor) index(op string, axis, i int) int {
	n := t.shape[axis]
	if i < -n || i >= n {
		fail(op, "index %d is out of range for axis %d%s of size %d (shape %s): valid are 0..%d or -%d..-1",
			i, axis, t.axisName(axis), n, t.describe(), n-1, n)
	}
	if i < 0 {
		i += n
	}
	return i
}

func (t *Tensor) axisName(axis int) string {
	if t.axes == nil {
		return ""
	}
	return " (" + t.axes[axis] + ")"
}

// At indexes the leading axes, as t[i, j] in numpy: At(0, -1) of [batch, pos, vocab] logits
// is the last position's [vocab] logits. Negative indices count from the end. The result
// shares t's memory.
func (t *Tensor) At(idx ...int) *Tensor {
	if len(idx) > t.Rank() {
		fail("At", "%d indices %v for shape %s (rank %d)", len(idx), idx, t.describe(), t.Rank())
	}
	off := 0
	for k, i := range idx {
		off = off*t.shape[k] + t.index("At", k, i)
	}
	inner := size(t.shape[len(idx):])
	u := &Tensor{shape: slices.Clone(t.shape[len(idx):]), data: t.data[off*inner : (off+1)*inner : (off+1)*inner], isInt: t.isInt}
	if t.axes != nil {
		u.axes = slices.Clone(t.axes[len(idx):])
	}
	return u
}

// Index selects index i of one axis and drops that axis: Index(-1, 5) of [pos, vocab] is
// token 5's logit at every position.
func (t *Tensor) Index(axis, i int) *Tensor {
	a := t.axis("Index", axis)
	i = t.index("Index", a, i)
	return t.Take(a, i).Squeeze(a)
}

// Slice keeps [lo, hi) of one axis, as t[:, lo:hi] in numpy: negative lo and hi count from
// the end, and hi = 0 after a negative lo means "to the end", as in a trace's At: Slice(1,
// -1, 0) keeps the last position (with its axis, unlike Index(1, -1)).
func (t *Tensor) Slice(axis, lo, hi int) *Tensor {
	a := t.axis("Slice", axis)
	n := t.shape[a]
	l, h := lo, hi
	if l < 0 {
		l += n
	}
	if h < 0 {
		h += n
	} else if h == 0 && lo < 0 {
		h = n
	}
	if l < 0 || h > n || l > h {
		fail("Slice", "range [%d, %d) does not fit axis %d%s of size %d (shape %s)", lo, hi, a, t.axisName(a), n, t.describe())
	}
	idx := make([]int, h-l)
	for i := range idx {
		idx[i] = l + i
	}
	return t.Take(a, idx...)
}

// Take keeps the given indices of one axis, in that order (repeats allowed): Take(-1, mary,
// john) of logits is the two names' logits.
func (t *Tensor) Take(axis int, indices ...int) *Tensor {
	a := t.axis("Take", axis)
	norm := make([]int, len(indices))
	for i, ix := range indices {
		norm[i] = t.index("Take", a, ix)
	}
	outer, n, inner := t.split(a)
	shape := slices.Clone(t.shape)
	shape[a] = len(norm)
	out := make([]float32, outer*len(norm)*inner)
	for o := 0; o < outer; o++ {
		src := t.data[o*n*inner:]
		dst := out[o*len(norm)*inner:]
		for k, ix := range norm {
			copy(dst[k*inner:(k+1)*inner], src[ix*inner:(ix+1)*inner])
		}
	}
	return &Tensor{shape: shape, axes: slices.Clone(t.axes), data: out, isInt: t.isInt}
}

// Reshape gives the values a new shape of the same size; one dimension may be -1 (inferred).
// Axis names are dropped (the axes are new).
func (t *Tensor) Reshape(shape ...int) *Tensor {
	shape = slices.Clone(shape)
	infer, known := -1, 1
	for i, d := range shape {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			fail("Reshape", "shape %v: only one dimension may be -1 and none may be negative otherwise", shape)
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if known == 0 || len(t.data)%known != 0 {
			fail("Reshape", "cannot reshape %s (%d values) into %v", t.describe(), len(t.data), shape)
		}
		shape[infer] = len(t.data) / known
	}
	if size(shape) != len(t.data) {
		fail("Reshape", "cannot reshape %s (%d values) into %v (%d values)", t.describe(), len(t.data), shape, size(shape))
	}
	return &Tensor{shape: shape, data: t.data, isInt: t.isInt}
}

// Unsqueeze inserts an axis of size 1 before axis (Rank() or -1 appends one).
func (t *Tensor) Unsqueeze(axis int) *Tensor {
	r := t.Rank()
	if axis < -r-1 || axis > r {
		fail("Unsqueeze", "axis %d is out of range for shape %s: valid are 0..%d or -%d..-1", axis, t.describe(), r, r+1)
	}
	if axis < 0 {
		axis += r + 1
	}
	u := &Tensor{shape: slices.Insert(slices.Clone(t.shape), axis, 1), data: t.data, isInt: t.isInt}
	if t.axes != nil {
		u.axes = slices.Insert(slices.Clone(t.axes), axis, "")
	}
	return u
}

// Squeeze removes the given axes, which must have size 1 (none given: every axis of size 1).
func (t *Tensor) Squeeze(axes ...int) *Tensor {
	drop := make([]bool, t.Rank())
	if len(axes) == 0 {
		for i, d := range t.shape {
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		a = t.axis("Squeeze", a)
		if t.shape[a] != 1 {
			fail("Squeeze", "axis %d%s has size %d, not 1 (shape %s)", a, t.axisName(a), t.shape[a], t.describe())
		}
		drop[a] = true
	}
	u := &Tensor{shape: []int{}, data: t.data, isInt: t.isInt}
	for i, d := range t.shape {
		if !drop[i] {
			u.shape = append(u.shape, d)
			if t.axes != nil {
				u.axes = append(u.axes, t.axes[i])
			}
		}
	}
	return u
}

// Transpose swaps two axes.
func (t *Tensor) Transpose(a, b int) *Tensor {
	a, b = t.axis("Transpose", a), t.axis("Transpose", b)
	perm := make([]int, t.Rank())
	for i := range perm {
		perm[i] = i
	}
	perm[a], perm[b] = perm[b], perm[a]
	return t.Permute(perm...)
}

// Permute reorders the axes: the result's axis i is t's axis order[i].
func (t *Tensor) Permute(order ...int) *Tensor {
	r := t.Rank()
	if len(order) != r {
		fail("Permute", "order %v has %d axes but shape %s has %d", order, len(order), t.describe(), r)
	}
	seen := make([]bool, r)
	perm := make([]int, r)
	for i, a := range order {
		a = t.axis("Permute", a)
		if seen[a] {
			fail("Permute", "order %v names axis %d twice", order, a)
		}
		seen[a], perm[i] = true, a
	}
	strides := stridesOf(t.shape)
	shape := make([]int, r)
	src := make([]int, r) // the source stride of each output axis
	u := &Tensor{isInt: t.isInt}
	for i, a := range perm {
		shape[i], src[i] = t.shape[a], strides[a]
		if t.axes != nil {
			u.axes = append(u.axes, t.axes[a])
		}
	}
	u.shape, u.data = shape, gather(t.data, shape, src)
	return u
}

// stridesOf is the row-major stride of each axis.
func stridesOf(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// gather walks shape in row-major order and reads src at the given strides (0: broadcast).
func gather(src []float32, shape, strides []int) []float32 {
	out := make([]float32, size(shape))
	if len(out) == 0 {
		return out
	}
	r := len(shape)
	if r == 0 {
		out[0] = src[0]
		return out
	}
	idx := make([]int, r)
	last, lastStride := shape[r-1], strides[r-1]
	off := 0
	for o := 0; o < len(out); o += last {
		row := out[o : o+last]
		for j := range row {
			row[j] = src[off+j*lastStride]
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			off += strides[d]
			if idx[d] < shape[d] {
				break
			}
			off -= strides[d] * shape[d]
			idx[d] = 0
		}
	}
	return out
}

// Diagonal is the diagonal of the last two axes, offset above (> 0) or below (< 0) the main
// one, as torch's diagonal(offset, dim1=-2, dim2=-1): [..., n, m] gives [..., k] with
// element i = t[..., i, i+offset] (i-offset, i for a negative offset). TransformerLens's
// induction score is the mean of pattern.Diagonal(1-seqLen).
func (t *Tensor) Diagonal(offset int) *Tensor {
	r := t.Rank()
	if r < 2 {
		fail("Diagonal", "needs at least two axes, got shape %s", t.describe())
	}
	n, m := t.shape[r-2], t.shape[r-1]
	r0, c0 := 0, offset
	if offset < 0 {
		r0, c0 = -offset, 0
	}
	k := min(n-r0, m-c0)
	if k <= 0 {
		fail("Diagonal", "offset %d leaves no diagonal in the last two axes of shape %s (valid: %d..%d)", offset, t.describe(), 1-n, m-1)
	}
	outer := size(t.shape[:r-2])
	data := make([]float32, 0, outer*k)
	for o := 0; o < outer; o++ {
		base := o * n * m
		for i := 0; i < k; i++ {
			data = append(data, t.data[base+(r0+i)*m+c0+i])
		}
	}
	u := &Tensor{shape: append(slices.Clone(t.shape[:r-2]), k), data: data, isInt: t.isInt}
	if t.axes != nil {
		u.axes = append(slices.Clone(t.axes[:r-2]), "diag")
	}
	return u
}
