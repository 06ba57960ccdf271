package module

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
)

func TestTransposesMadeOnceFromTheOriginal(t *testing.T) {
	var tr Transposes
	w := tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 2, 3) // [rows=2, cols=3]
	asked := map[string]int{}
	weight := func(name string) (*tensors.Tensor, bool) {
		asked[name]++
		if name == "w" {
			return w, true
		}
		return nil, false
	}
	var first *tensors.Tensor
	for i := 0; i < 2; i++ {
		out, ok, err := tr.Feed(nil, "w"+TransposedSuffix, shapes.Make(dtypes.Float32, 3, 2), weight)
		if err != nil || !ok {
			t.Fatalf("Feed: ok=%v err=%v", ok, err)
		}
		if i == 0 {
			first = out
		} else if out != first {
			t.Error("the second Feed made a new transpose instead of the kept one")
		}
		if dims := out.Shape().Dimensions; dims[0] != 3 || dims[1] != 2 {
			t.Fatalf("transposed shape %v", dims)
		}
		got := tensors.MustCopyFlatData[float32](out)
		want := []float32{1, 4, 2, 5, 3, 6}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("transposed data %v, want %v", got, want)
			}
		}
	}
	if asked["w"] != 2 || asked["w.T"] != 0 || tr.Len() != 1 {
		t.Errorf("asked %v, %d transposes kept; want the original looked up and one transpose kept", asked, tr.Len())
	}
	// Not a transposed parameter, or a wrong shape: not Feed's business.
	if _, ok, _ := tr.Feed(nil, "w", shapes.Make(dtypes.Float32, 2, 3), weight); ok {
		t.Error("Feed took a plain parameter")
	}
	if _, ok, _ := tr.Feed(nil, "w.T", shapes.Make(dtypes.Float32, 2, 3), weight); ok {
		t.Error("Feed took a .T parameter whose shape is not the original's transpose")
	}
}
