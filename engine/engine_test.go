package engine

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/module"
)

func TestFingerprintTellsGraphsApart(t *testing.T) {
	e, err := Open("go")
	if err != nil {
		t.Fatal(err)
	}
	fp := func(build func(g *graph.Graph) *graph.Node) [32]byte {
		g, outs, err := e.BuildOnly("fp", func(g *graph.Graph) ([]*graph.Node, error) { return []*graph.Node{build(g)}, nil })
		if err != nil {
			t.Fatal(err)
		}
		defer g.Finalize()
		return Fingerprint(g, outs)
	}
	x := func(g *graph.Graph) *graph.Node { return graph.Parameter(g, "x", shapes.Make(dtypes.Float32, 2, 6)) }
	y := func(g *graph.Graph) *graph.Node { return graph.Parameter(g, "y", shapes.Make(dtypes.Float32, 2, 6)) }
	graphs := map[string]func(g *graph.Graph) *graph.Node{
		"x+y":        func(g *graph.Graph) *graph.Node { return graph.Add(x(g), y(g)) },
		"x-y":        func(g *graph.Graph) *graph.Node { return graph.Sub(x(g), y(g)) },
		"y-x":        func(g *graph.Graph) *graph.Node { a, b := x(g), y(g); return graph.Sub(b, a) },
		"reshape3x4": func(g *graph.Graph) *graph.Node { return graph.Reshape(x(g), 3, 4) },
		"reshape4x3": func(g *graph.Graph) *graph.Node { return graph.Reshape(x(g), 4, 3) },
		"slice0:1":   func(g *graph.Graph) *graph.Node { return graph.Slice(x(g), graph.AxisRange(0, 1)) },
		"slice1:2":   func(g *graph.Graph) *graph.Node { return graph.Slice(x(g), graph.AxisRange(1, 2)) },
		"x*2":        func(g *graph.Graph) *graph.Node { return graph.MulScalar(x(g), 2) },
		"x*3":        func(g *graph.Graph) *graph.Node { return graph.MulScalar(x(g), 3) },
		"f64":        func(g *graph.Graph) *graph.Node { return graph.ConvertDType(x(g), dtypes.Float64) },
		"i32":        func(g *graph.Graph) *graph.Node { return graph.ConvertDType(x(g), dtypes.Int32) },
	}
	seen := map[[32]byte]string{}
	for name, build := range graphs {
		k := fp(build)
		if other, dup := seen[k]; dup {
			t.Errorf("graphs %s and %s have the same fingerprint", name, other)
		}
		seen[k] = name
		if fp(build) != k {
			t.Errorf("graph %s: two builds have different fingerprints", name)
		}
	}
}

func TestTransposedParameterIsFedOnce(t *testing.T) {
	e, err := Open("go")
	if err != nil {
		t.Fatal(err)
	}
	w := tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 2, 3) // [rows=2, cols=3]
	fed := map[string]int{}
	feed := func(name string, _ shapes.Shape) (*tensors.Tensor, error) {
		fed[name]++
		return w, nil
	}
	for i := 0; i < 2; i++ {
		out, err := e.Run("t", func(g *graph.Graph) ([]*graph.Node, error) {
			return []*graph.Node{module.TransposedParam(g, "w", 2, 3, dtypes.Float32)}, nil
		}, feed)
		if err != nil {
			t.Fatal(err)
		}
		got := tensors.MustCopyFlatData[float32](out[0])
		want := []float32{1, 4, 2, 5, 3, 6}
		if dims := out[0].Shape().Dimensions; dims[0] != 3 || dims[1] != 2 {
			t.Fatalf("transposed shape %v", dims)
		}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("transposed data %v, want %v", got, want)
			}
		}
	}
	if fed["w.T"] != 0 || fed["w"] != 2 || len(e.transposed) != 1 {
		t.Errorf("fed %v, %d transposes kept; want the original fed and one transpose kept", fed, len(e.transposed))
	}
}
