package tensor

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

type goldenValue struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
	Int   bool      `json:"int"`
}

func (g goldenValue) tensor() *Tensor {
	if g.Int {
		ints := make([]int, len(g.Data))
		for i, v := range g.Data {
			ints[i] = int(v)
		}
		return FromInts(ints, g.Shape...)
	}
	f := make([]float32, len(g.Data))
	for i, v := range g.Data {
		f[i] = float32(v)
	}
	if len(g.Shape) == 0 {
		return Scalar(f[0])
	}
	return New(f, g.Shape...)
}

// TestGolden compares every operation with PyTorch's (tests/reference/tensor_ref.py).
func TestGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var gold struct {
		Inputs map[string]goldenValue `json:"inputs"`
		Cases  map[string]goldenValue `json:"cases"`
	}
	if err := json.Unmarshal(raw, &gold); err != nil {
		t.Fatal(err)
	}
	in := func(name string) *Tensor { return gold.Inputs[name].tensor() }
	x, y, z, w, m, ints, ties := in("x"), in("y"), in("z"), in("w"), in("m"), in("ints"), in("ties")
	ops := map[string]func() *Tensor{
		"softmax_last":      func() *Tensor { return x.Softmax(-1) },
		"softmax_axis1":     func() *Tensor { return x.Softmax(1) },
		"log_softmax_last":  func() *Tensor { return x.LogSoftmax(-1) },
		"log_softmax_axis0": func() *Tensor { return x.LogSoftmax(0) },
		"sum_0_2":           func() *Tensor { return x.Sum(0, -1) },
		"sum_all":           func() *Tensor { return x.Sum() },
		"mean_1":            func() *Tensor { return x.Mean(1) },
		"mean_all":          func() *Tensor { return x.Mean() },
		"norm_last":         func() *Tensor { return x.Norm(-1) },
		"norm_0_1":          func() *Tensor { return x.Norm(1, 0) },
		"max_1":             func() *Tensor { return x.Max(1) },
		"min_0":             func() *Tensor { return x.Min(0) },
		"argmax_last":       func() *Tensor { return x.ArgMax(-1) },
		"argmax_1":          func() *Tensor { return x.ArgMax(1) },
		"argmin_last":       func() *Tensor { return x.ArgMin(2) },
		"argmax_ties":       func() *Tensor { return ties.ArgMax(-1) },
		"topk3_values":      func() *Tensor { v, _ := x.TopK(3); return v },
		"topk3_indices":     func() *Tensor { _, i := x.TopK(3); return i },
		"topk_ties_values":  func() *Tensor { v, _ := ties.TopK(4); return v },
		"topk_ties_indices": func() *Tensor { _, i := ties.TopK(4); return i },
		"add_broadcast":     func() *Tensor { return x.Add(y) },
		"mul_broadcast":     func() *Tensor { return y.Mul(x) },
		"div_vector":        func() *Tensor { return x.Div(z) },
		"sub_scalar":        func() *Tensor { return x.Sub(2.5) },
		"cosine_last":       func() *Tensor { return CosineSim(x, w, -1) },
		"cosine_axis0":      func() *Tensor { return CosineSim(x.At(0), w, 0) },
		"stack_axis1":       func() *Tensor { return Stack([]*Tensor{x.At(0), x.At(1)}, 1) },
		"cat_axis2":         func() *Tensor { return Concat([]*Tensor{x, x.Slice(2, 0, 2)}, -1) },
		"permute_201":       func() *Tensor { return x.Permute(2, 0, 1) },
		"transpose_last":    func() *Tensor { return x.Transpose(-1, -2) },
		"matmul":            func() *Tensor { return x.MatMul(m) },
		"matmul_vec":        func() *Tensor { return x.At(0, 0).MatMul(m) },
		"slice":             func() *Tensor { return x.Slice(1, 1, 3).Slice(-1, -2, 5) },
		"take":              func() *Tensor { return x.Take(2, 4, 0, -1) },
		"at_0_last":         func() *Tensor { return x.At(0, -1) },
		"index_axis1":       func() *Tensor { return x.Index(1, 2) },
		"ints_sum_last":     func() *Tensor { return ints.Sum(-1) },
		"ints_add":          func() *Tensor { return ints.Add(1) },
		"exp":               func() *Tensor { return x.Exp() },
		"abs":               func() *Tensor { return x.Abs() },
		"pow2":              func() *Tensor { return x.Pow(2) },
	}
	for name, want := range gold.Cases {
		t.Run(name, func(t *testing.T) {
			op, ok := ops[name]
			if !ok {
				t.Fatalf("no Go operation for golden case %q", name)
			}
			got := op()
			if !slices.Equal(got.Shape(), want.Shape) {
				t.Fatalf("shape %v, want %v", got.Shape(), want.Shape)
			}
			if got.IsInt() != want.Int {
				t.Fatalf("IsInt %v, want %v", got.IsInt(), want.Int)
			}
			for i, v := range got.Data() {
				if d := math.Abs(float64(v) - want.Data[i]); d > 1e-5*math.Max(1, math.Abs(want.Data[i])) {
					t.Fatalf("value %d: %v, want %v (|diff| %.3g)\n%v", i, v, want.Data[i], d, got)
				}
			}
		})
	}
	for name := range ops {
		if _, ok := gold.Cases[name]; !ok {
			t.Errorf("operation %q has no golden case", name)
		}
	}
}
