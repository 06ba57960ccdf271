package tensor

import (
	"reflect"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// From copies a GoMLX tensor (what a trace returns, what nnsight.Kept gives back) into a
// Tensor: float32 and float64 as floats; int32, int64 and bool as integers.
func From(x *tensors.Tensor) *Tensor {
	if x == nil {
		fail("From", "nil GoMLX tensor")
	}
	dims := x.Shape().Dimensions
	t := &Tensor{shape: slices.Clone(dims)}
	if t.shape == nil {
		t.shape = []int{}
	}
	switch x.DType() {
	case dtypes.Float32:
		t.data = tensors.MustCopyFlatData[float32](x)
	case dtypes.Float64:
		for _, v := range tensors.MustCopyFlatData[float64](x) {
			t.data = append(t.data, float32(v))
		}
	case dtypes.Int32:
		for _, v := range tensors.MustCopyFlatData[int32](x) {
			t.data = append(t.data, intValue("From", int64(v)))
		}
		t.isInt = true
	case dtypes.Int64:
		for _, v := range tensors.MustCopyFlatData[int64](x) {
			t.data = append(t.data, intValue("From", v))
		}
		t.isInt = true
	case dtypes.Bool:
		for _, v := range tensors.MustCopyFlatData[bool](x) {
			t.data = append(t.data, map[bool]float32{true: 1}[v])
		}
		t.isInt = true
	default:
		fail("From", "a %s tensor %v: supported are Float32, Float64, Int32, Int64 and Bool", x.DType(), dims)
	}
	if t.data == nil {
		t.data = []float32{}
	}
	return t
}

// GoMLX is t as a GoMLX tensor (float32, or int32 for an integer tensor), e.g. to Set it into
// a trace.
func (t *Tensor) GoMLX() *tensors.Tensor {
	if t.isInt {
		ints := make([]int32, len(t.data))
		for i, v := range t.data {
			ints[i] = int32(v)
		}
		return tensors.FromFlatDataAndDimensions(ints, t.shape...)
	}
	return tensors.FromFlatDataAndDimensions(slices.Clone(t.data), t.shape...)
}

// Of makes a tensor from a Go number or nested slices of numbers ([][]float32{{1, 2}, {3, 4}},
// []int{...}): float32 and float64 give floats, int, int32 and int64 integers. Rows must
// have equal lengths.
func Of(v any) *Tensor {
	t := &Tensor{shape: []int{}}
	var shapeOf func(r reflect.Value, d int)
	shapeOf = func(r reflect.Value, d int) {
		for r.Kind() == reflect.Interface {
			r = r.Elem()
		}
		if r.Kind() != reflect.Slice && r.Kind() != reflect.Array {
			return
		}
		t.shape = append(t.shape, r.Len())
		if r.Len() > 0 {
			shapeOf(r.Index(0), d+1)
		}
	}
	rv := reflect.ValueOf(v)
	shapeOf(rv, 0)
	isInt, isFloat := false, false
	var fill func(r reflect.Value, d int, path []int)
	fill = func(r reflect.Value, d int, path []int) {
		for r.Kind() == reflect.Interface {
			r = r.Elem()
		}
		if d < len(t.shape) {
			if r.Kind() != reflect.Slice && r.Kind() != reflect.Array || r.Len() != t.shape[d] {
				fail("Of", "ragged value: element %v is %v, but the shape from the first elements is %v", path, r.Type(), t.shape)
			}
			for i := 0; i < r.Len(); i++ {
				fill(r.Index(i), d+1, append(path, i))
			}
			return
		}
		switch r.Kind() {
		case reflect.Float32, reflect.Float64:
			isFloat = true
			t.data = append(t.data, float32(r.Float()))
		case reflect.Int, reflect.Int32, reflect.Int64:
			isInt = true
			t.data = append(t.data, intValue("Of", r.Int()))
		default:
			fail("Of", "element %v is a %v; give numbers (float32, float64, int, int32, int64) or slices of them", path, r.Type())
		}
	}
	if !rv.IsValid() {
		fail("Of", "nil value")
	}
	fill(rv, 0, nil)
	if t.data == nil {
		t.data = []float32{}
	}
	t.isInt = isInt && !isFloat
	return t
}
