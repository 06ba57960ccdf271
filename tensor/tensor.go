// Package tensor is eager arithmetic on the values a trace returns: index and slice, argmax,
// top-k, softmax, reductions over axes, cosine similarity, broadcasting arithmetic, stacking.
//
// A notebook cell reads like the experiment, without loops over flat slices:
//
//	logits := res.Tensor("logits")                        // [batch, pos, vocab]
//	probs, ids := logits.At(0, -1).Softmax(-1).TopK(5)    // the next token's five best
//	drift := a.Sub(b).Norm(-1)                            // one distance per position
//	sim := tensor.CosineSim(x, y, -1)
//	layers := tensor.Stack(list, 0)
//
// Values are float32 (sums accumulate in float64); integer results (ArgMax, TopK's indices,
// token ids) are tensors that remember they hold integers, read with Ints. A tensor is never
// changed in place: every operation returns a new one (which may share memory with its input).
// Axes are numbered from the front (0, 1, ...) or from the end (-1 is the last); when a value
// carries axis names (batch, pos, embd, ...) they follow it through the operations that keep
// those axes, and Axis("pos") finds one by name.
//
// Errors: operations panic with an *Error that names the operation, the shapes and what was
// valid ("tensor.Add: shapes [2 3] and [4] do not broadcast: ..."), so that calls chain; a
// notebook shows the message, and Catch turns it into an error where a caller wants one.
//
// Why not the Go backend of GoMLX, or gonum: GoMLX compiles a graph per operation and input
// shape, which costs milliseconds per call before any arithmetic and grows a program cache
// in a notebook that never repeats a shape; gonum's mat is two-dimensional float64 without
// axes, broadcasting or int results, so every value would be copied and reshaped around it.
// The operations researchers apply to a saved value are simple loops; owning them keeps the
// semantics (negative axes, numpy broadcasting, axis names, messages) in one small package.
package tensor

import (
	"fmt"
	"slices"
	"strings"
)

// Tensor is an n-dimensional array of float32 values (or of integers, for indices) with a
// shape and optional axis names.
type Tensor struct {
	shape []int
	axes  []string // nil, or one name per axis
	data  []float32
	isInt bool
}

// Error is what operations panic with: which operation failed and why.
type Error struct {
	Op  string // "Add", "Softmax", ...
	Msg string
}

func (e *Error) Error() string { return "tensor." + e.Op + ": " + e.Msg }

func fail(op, format string, args ...any) {
	panic(&Error{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// Catch runs fn and returns the *Error it panicked with, if any (other panics go on).
func Catch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*Error); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	fn()
	return nil
}

// New makes a tensor of the given shape from data (row-major, len(data) = product of shape;
// no shape: a vector). The tensor uses data without copying it.
func New(data []float32, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	checkShape("New", shape)
	if n := size(shape); n != len(data) {
		fail("New", "shape %v holds %d values but data has %d", shape, n, len(data))
	}
	return &Tensor{shape: slices.Clone(shape), data: data}
}

// FromInts makes an integer tensor (token ids, indices) of the given shape (no shape: a vector).
func FromInts(data []int, shape ...int) *Tensor {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	checkShape("FromInts", shape)
	if n := size(shape); n != len(data) {
		fail("FromInts", "shape %v holds %d values but data has %d", shape, n, len(data))
	}
	f := make([]float32, len(data))
	for i, v := range data {
		f[i] = intValue("FromInts", int64(v))
	}
	return &Tensor{shape: slices.Clone(shape), data: f, isInt: true}
}

// maxExactInt is the largest magnitude float32 holds exactly (2^24).
const maxExactInt = 1 << 24

func intValue(op string, v int64) float32 {
	if v > maxExactInt || v < -maxExactInt {
		fail(op, "integer %d is too large for a tensor (integers are exact up to 2^24 = %d)", v, maxExactInt)
	}
	return float32(v)
}

// Scalar is a rank-0 tensor.
func Scalar(v float32) *Tensor { return &Tensor{shape: []int{}, data: []float32{v}} }

// Zeros is a tensor of zeros.
func Zeros(shape ...int) *Tensor { return Full(0, shape...) }

// Full is a tensor whose every value is v.
func Full(v float32, shape ...int) *Tensor {
	checkShape("Full", shape)
	d := make([]float32, size(shape))
	if v != 0 {
		for i := range d {
			d[i] = v
		}
	}
	return &Tensor{shape: slices.Clone(shape), data: d}
}

// Eye is the n x n identity matrix; its rows are one-hot vectors (Eye(n).At(i)).
func Eye(n int) *Tensor {
	t := Zeros(n, n)
	for i := 0; i < n; i++ {
		t.data[i*n+i] = 1
	}
	return t
}

func checkShape(op string, shape []int) {
	for i, d := range shape {
		if d < 0 {
			fail(op, "shape %v has a negative dimension at axis %d", shape, i)
		}
	}
}

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Shape is the size of each axis.
func (t *Tensor) Shape() []int { return slices.Clone(t.shape) }

// Rank is the number of axes.
func (t *Tensor) Rank() int { return len(t.shape) }

// Size is the number of values.
func (t *Tensor) Size() int { return len(t.data) }

// Dim is the size of one axis (negative counts from the end).
func (t *Tensor) Dim(axis int) int { return t.shape[t.axis("Dim", axis)] }

// IsInt says whether the tensor holds integers (indices, token ids).
func (t *Tensor) IsInt() bool { return t.isInt }

// Axes are the axis names, or nil when the value does not carry them.
func (t *Tensor) Axes() []string { return slices.Clone(t.axes) }

// WithAxes returns the tensor with its axes named (one name per axis; none clears them).
func (t *Tensor) WithAxes(names ...string) *Tensor {
	if len(names) != 0 && len(names) != t.Rank() {
		fail("WithAxes", "%d names %v for a tensor of shape %v (rank %d)", len(names), names, t.shape, t.Rank())
	}
	u := *t
	u.axes = nil
	if len(names) > 0 {
		u.axes = slices.Clone(names)
	}
	return &u
}

// Axis is the index of the axis with the given name.
func (t *Tensor) Axis(name string) int {
	if i := slices.Index(t.axes, name); i >= 0 {
		return i
	}
	if t.axes == nil {
		fail("Axis", "no axis %q: this tensor %v has no axis names (WithAxes names them)", name, t.shape)
	}
	fail("Axis", "no axis %q; axes: %s", name, t.axisList())
	return 0
}

// Data is a copy of the values, row-major.
func (t *Tensor) Data() []float32 { return slices.Clone(t.data) }

// Ints is a copy of the values of an integer tensor (ArgMax, TopK's indices, token ids).
func (t *Tensor) Ints() []int {
	if !t.isInt {
		fail("Ints", "tensor %s holds float32 values, not integers (Data reads them; ArgMax and TopK give indices)", t.describe())
	}
	out := make([]int, len(t.data))
	for i, v := range t.data {
		out[i] = int(v)
	}
	return out
}

// Item is the one value of a tensor of size 1 (a scalar, [1], [1 1], ...).
func (t *Tensor) Item() float32 {
	if len(t.data) != 1 {
		fail("Item", "tensor %s has %d values, not 1 (index it with At first)", t.describe(), len(t.data))
	}
	return t.data[0]
}

// Int is the one value of an integer tensor of size 1.
func (t *Tensor) Int() int {
	if !t.isInt {
		fail("Int", "tensor %s holds float32 values, not integers", t.describe())
	}
	return int(t.Item())
}

// Float32 is t's values and shape, as the display functions take them.
func (t *Tensor) Float32() ([]float32, []int) { return t.Data(), t.Shape() }

// describe is "[1 5 768] (batch, pos, embd)" for messages.
func (t *Tensor) describe() string {
	if t.axes == nil {
		return fmt.Sprint(t.shape)
	}
	return fmt.Sprintf("%v (%s)", t.shape, t.axisList())
}

// axis normalizes a possibly negative axis or fails naming the valid range.
func (t *Tensor) axis(op string, axis int) int {
	r := t.Rank()
	if axis < -r || axis >= r {
		if r == 0 {
			fail(op, "axis %d of a scalar: a scalar has no axes", axis)
		}
		fail(op, "axis %d is out of range for shape %s: axes are 0..%d or -%d..-1", axis, t.describe(), r-1, r)
	}
	if axis < 0 {
		axis += r
	}
	return axis
}

// split views t as [outer, n, inner] around axis.
func (t *Tensor) split(axis int) (outer, n, inner int) {
	return size(t.shape[:axis]), t.shape[axis], size(t.shape[axis+1:])
}

// dropAxis is t's shape and axis names without axis.
func (t *Tensor) dropAxis(axis int) ([]int, []string) {
	shape := slices.Delete(slices.Clone(t.shape), axis, axis+1)
	var names []string
	if t.axes != nil {
		names = slices.Delete(slices.Clone(t.axes), axis, axis+1)
	}
	return shape, names
}

// axisList is "batch, pos, embd"; an unnamed axis among named ones (a new axis from Stack or
// Unsqueeze) shows as "_".
func (t *Tensor) axisList() string {
	names := make([]string, len(t.axes))
	for i, a := range t.axes {
		names[i] = a
		if a == "" {
			names[i] = "_"
		}
	}
	return strings.Join(names, ", ")
}
