package tensor

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
)

// mustFail runs fn and checks that it panics with an *Error whose message has every part.
func mustFail(t *testing.T, fn func(), parts ...string) {
	t.Helper()
	err := Catch(fn)
	if err == nil {
		t.Fatalf("no error; want one with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestErrorsNameOpShapesAndRange(t *testing.T) {
	x := Zeros(2, 3, 4).WithAxes("batch", "pos", "embd")
	mustFail(t, func() { x.At(0, 3) }, "tensor.At", "index 3", "axis 1 (pos)", "size 3", "0..2", "-3..-1")
	mustFail(t, func() { x.Softmax(3) }, "tensor.Softmax", "axis 3", "[2 3 4] (batch, pos, embd)", "0..2 or -3..-1")
	mustFail(t, func() { x.Sum(-4) }, "tensor.Sum", "axis -4")
	mustFail(t, func() { x.Add(Zeros(3)) }, "tensor.Add", "[2 3 4] (batch, pos, embd)", "[3]", "axis -1", "4 vs 3")
	mustFail(t, func() { x.Mul("2") }, "tensor.Mul", "string")
	mustFail(t, func() { Stack([]*Tensor{Zeros(2), Zeros(3)}, 0) }, "tensor.Stack", "tensor 1", "[3]", "[2]")
	mustFail(t, func() { Concat([]*Tensor{Zeros(2, 3), Zeros(3, 3)}, 1) }, "tensor.Concat", "tensor 1", "all axes but 1")
	mustFail(t, func() { x.TopK(5) }, "tensor.TopK", "k = 5", "4 values")
	mustFail(t, func() { x.Slice(1, 2, 5) }, "tensor.Slice", "[2, 5)", "size 3")
	mustFail(t, func() { x.Reshape(5, -1) }, "tensor.Reshape", "24 values")
	mustFail(t, func() { x.Ints() }, "tensor.Ints", "float32")
	mustFail(t, func() { x.Item() }, "tensor.Item", "24 values")
	mustFail(t, func() { x.Axis("head") }, "no axis \"head\"", "batch, pos, embd")
	mustFail(t, func() { x.MatMul(Zeros(3, 2)) }, "tensor.MatMul", "(4)", "(3)")
	mustFail(t, func() { x.Squeeze(0) }, "tensor.Squeeze", "size 2")
	mustFail(t, func() { FromInts([]int{1 << 25}) }, "2^24")
	mustFail(t, func() { Of([][]float32{{1, 2}, {3}}) }, "tensor.Of", "ragged")
	// Other panics are not errors of this package: Catch lets them through.
	defer func() {
		if recover() == nil {
			t.Error("Catch swallowed a foreign panic")
		}
	}()
	_ = Catch(func() { panic("other") })
}

func TestAxisNamesFollowTheValue(t *testing.T) {
	x := Zeros(1, 5, 8).WithAxes("batch", "pos", "embd")
	check := func(what string, got *Tensor, want ...string) {
		t.Helper()
		if !slices.Equal(got.Axes(), want) {
			t.Errorf("%s: axes %v, want %v", what, got.Axes(), want)
		}
	}
	check("At", x.At(0), "pos", "embd")
	check("Mean", x.Mean(x.Axis("pos")), "batch", "embd")
	check("Softmax", x.Softmax(-1), "batch", "pos", "embd")
	check("Add scalar", x.Add(1), "batch", "pos", "embd")
	check("Add broadcast", x.Add(Zeros(8)), "batch", "pos", "embd")
	check("Slice", x.Slice(1, 0, 2), "batch", "pos", "embd")
	check("Transpose", x.Transpose(1, 2), "batch", "embd", "pos")
	check("Squeeze", x.Squeeze(), "pos", "embd")
	check("conflict", x.Add(Zeros(1, 5, 8).WithAxes("a", "b", "c")))
	check("Reshape", x.Reshape(5, 8))
	if x.Axis("embd") != 2 {
		t.Error("Axis(embd) != 2")
	}
}

func TestString(t *testing.T) {
	got := Of([][]float32{{0.1, -2, 3.5}, {1, 0, -1}}).WithAxes("pos", "embd").String()
	want := "float32[2 3] (pos, embd)\n[[ 0.1000, -2.0000,  3.5000],\n [ 1.0000,  0.0000, -1.0000]]"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got, want := FromInts([]int{3, 10, 7}).String(), "int[3]\n[ 3, 10,  7]"; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got, want := Scalar(2.5).String(), "float32[]\n2.5000"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	// Large tensors show the first and last 3 of each long axis.
	big := Zeros(1, 100, 50257).Add(1e6)
	s := big.String()
	if lines := strings.Count(s, "\n"); lines > 10 {
		t.Errorf("a [1 100 50257] tensor prints %d lines:\n%s", lines, s)
	}
	if !strings.Contains(s, "1.0000e+06, 1.0000e+06, 1.0000e+06, ..., ") || !strings.Contains(s, "...,\n") {
		t.Errorf("summarized print lacks the ellipses or scientific notation:\n%s", s)
	}
	// A 3-D print separates its matrices with a blank line, like torch.
	if s := Zeros(2, 1, 1).String(); !strings.Contains(s, "]],\n\n [[") {
		t.Errorf("3-D print:\n%s", s)
	}
}

func TestNaNAndInfinity(t *testing.T) {
	nan := float32(math.NaN())
	x := New([]float32{nan, 1, 5, nan, 2})
	if got := x.ArgMax(0).Int(); got != 2 {
		t.Errorf("ArgMax with NaN = %d, want 2 (NaN never wins)", got)
	}
	if got := x.Max().Item(); got != 5 {
		t.Errorf("Max = %v", got)
	}
	_, ids := x.TopK(3)
	if !slices.Equal(ids.Ints(), []int{2, 4, 1}) {
		t.Errorf("TopK ids with NaN: %v", ids.Ints())
	}
	p := New([]float32{float32(math.Inf(-1)), 0, 0}).Softmax(0).Data()
	if !slices.Equal(p, []float32{0, 0.5, 0.5}) {
		t.Errorf("softmax with -Inf: %v", p)
	}
}

func TestConversions(t *testing.T) {
	g := tensors.FromValue([][]int32{{1, 2}, {3, 4}})
	x := From(g)
	if !x.IsInt() || !slices.Equal(x.Shape(), []int{2, 2}) || !slices.Equal(x.Ints(), []int{1, 2, 3, 4}) {
		t.Errorf("From int32: %v", x)
	}
	f := From(tensors.FromValue([]float64{0.5, 1.5}))
	if f.IsInt() || !slices.Equal(f.Data(), []float32{0.5, 1.5}) {
		t.Errorf("From float64: %v", f)
	}
	back := Of([][]float32{{1, 2}}).GoMLX()
	if got := tensors.MustCopyFlatData[float32](back); !slices.Equal(got, []float32{1, 2}) || !slices.Equal(back.Shape().Dimensions, []int{1, 2}) {
		t.Errorf("GoMLX: %v %v", got, back.Shape())
	}
	if Of([]int{1, 2}).IsInt() != true || Of([]any{1, 2.5}).IsInt() {
		t.Error("Of: integer-ness")
	}
	// Ops never change their input: At shares memory, so this is what would show it.
	base := Of([]float32{1, 2, 3})
	_ = base.At().Add(1)
	if !slices.Equal(base.Data(), []float32{1, 2, 3}) {
		t.Error("an operation changed its input")
	}
}

func TestExpMatchesMath(t *testing.T) {
	for x := -120.0; x <= 5; x += 0.001953125 {
		want := math.Exp(x)
		if got := exp(x); math.Abs(got-want) > 2e-8*want {
			t.Fatalf("exp(%v) = %v, want %v", x, got, want)
		}
	}
	if exp(-800) != 0 || !math.IsNaN(exp(math.NaN())) || !math.IsInf(exp(math.Inf(1)), 1) || exp(math.Inf(-1)) != 0 {
		t.Error("exp at the edges")
	}
}

func TestSliceToTheEndLikeProxyAt(t *testing.T) {
	x := Of([][]float32{{1, 2, 3}, {4, 5, 6}})
	if got := x.Slice(1, -1, 0); !slices.Equal(got.Shape(), []int{2, 1}) || !slices.Equal(got.Data(), []float32{3, 6}) {
		t.Errorf("Slice(1, -1, 0) = %v", got)
	}
	if got := x.Slice(1, -2, 0).Data(); !slices.Equal(got, []float32{2, 3, 5, 6}) {
		t.Errorf("Slice(1, -2, 0) = %v", got)
	}
	if got := x.Slice(1, 0, -1).Data(); !slices.Equal(got, []float32{1, 2, 4, 5}) {
		t.Errorf("Slice(1, 0, -1) = %v", got)
	}
	if got := x.Slice(1, 1, 1).Shape(); !slices.Equal(got, []int{2, 0}) {
		t.Errorf("an empty slice has shape %v", got)
	}
}

func TestEye(t *testing.T) {
	if got := Eye(3).At(1).Data(); !slices.Equal(got, []float32{0, 1, 0}) {
		t.Errorf("Eye(3).At(1) = %v", got)
	}
	if got := Eye(3).Sum().Item(); got != 3 {
		t.Errorf("trace of Eye(3) = %v", got)
	}
}

func TestStackedNamedTensorsPrintTheNewAxis(t *testing.T) {
	x := Zeros(2).WithAxes("embd")
	s := Stack([]*Tensor{x, x}, 0)
	if !slices.Equal(s.Axes(), []string{"", "embd"}) || !strings.HasPrefix(s.String(), "float32[2 2] (_, embd)\n") {
		t.Errorf("stacked: axes %q, printed\n%s", s.Axes(), s)
	}
}

func TestDiagonal(t *testing.T) {
	x := New([]float32{
		0, 1, 2, 3,
		4, 5, 6, 7,
		8, 9, 10, 11,
	}, 1, 3, 4)
	for _, c := range []struct {
		offset int
		want   []float32
	}{{0, []float32{0, 5, 10}}, {1, []float32{1, 6, 11}}, {-1, []float32{4, 9}}, {3, []float32{3}}, {-2, []float32{8}}} {
		d := x.Diagonal(c.offset)
		if got := d.Data(); !slices.Equal(got, c.want) || !slices.Equal(d.Shape(), []int{1, len(c.want)}) {
			t.Errorf("Diagonal(%d) = %v %v, want %v", c.offset, got, d.Shape(), c.want)
		}
	}
	if err := Catch(func() { x.Diagonal(4) }); err == nil || !strings.Contains(err.Error(), "valid: -2..3") {
		t.Errorf("an offset past the matrix: %v", err)
	}
}
