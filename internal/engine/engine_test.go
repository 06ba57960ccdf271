package engine

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
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
