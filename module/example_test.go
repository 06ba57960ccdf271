package module_test

import (
	"fmt"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

// plusOne is a user-defined module: a Linear child, then + 1.
type plusOne struct{ Lin *module.Linear }

func (p *plusOne) Children() []module.Child { return []module.Child{{Name: "lin", Module: p.Lin}} }
func (p *plusOne) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	y := c.Call1("lin", in[0]) // a child call: recorded, and reachable as "lin" in traces
	return []*module.Node{g.AddScalar(y, 1)}
}

// A module written by hand: its child's output is read by path, the parameters come from
// named weights (weight [[2 3]], bias [1]).
func Example() {
	m := nnsight.New(&plusOne{Lin: module.NewLinear(2, 1)}, nnsight.WithBackend("go"),
		nnsight.WithWeights(map[string]*tensors.Tensor{
			"lin.weight": tensors.FromValue([][]float32{{2, 3}}),
			"lin.bias":   tensors.FromValue([]float32{1}),
		}))
	x := [][]float32{{1, 1}, {2, 0}}
	res, err := m.Trace(x, func(t *nnsight.Tracer) {
		t.Module("lin").Output().Save("lin")
		t.Module("").Output().Save("out")
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	lin, _, _ := res.Float32("lin")
	out, shape, _ := res.Float32("out")
	fmt.Println("lin:", lin, "out:", out, shape)
	// Output: lin: [6 5] out: [7 6] [2 1]
}
