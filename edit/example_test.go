package edit_test

import (
	"fmt"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

// scaleByFirst is the seed's second toy: value = x[:, 0:1]; return x * value.
type scaleByFirst struct{}

func (scaleByFirst) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	x := in[0]
	value := c.Label("value", g.Slice(x, g.AxisRange(), g.AxisRange(0, 1)))
	return []*module.Node{g.Mul(x, g.BroadcastToDims(value, x.Shape().Dimensions...))}
}

// Scale an intermediate value of a forward (the labelled `value`) by 10: everything computed
// from it changes, the input does not.
func ExampleNew() {
	x := [][]float32{{1, 2, 3}, {4, 5, 6}}
	m := nnsight.New(scaleByFirst{}, nnsight.WithBackend("go"), nnsight.WithExampleInput(x))
	run := func() []float32 {
		res, err := m.Trace(x, func(t *nnsight.Tracer) { t.Module("").Output().Save("out") })
		if err != nil {
			panic(err)
		}
		out, _, _ := res.Float32("out")
		return out
	}
	fmt.Println("before:", run())
	if err := m.LoadEdits(edit.New("", "value", "value_scale", edit.Scale(10))); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("after: ", run())
	// Output:
	// before: [1 2 3 16 20 24]
	// after:  [10 20 30 160 200 240]
}

func ExampleGraph_Table() {
	gr := &edit.Graph{Module: "layer1", Type: "WrappedLayer", Nodes: []*edit.GNode{
		{Op: edit.Placeholder, Name: "x", Target: "x", Shape: "[2 3]"},
		{Op: edit.GetAttr, Name: "weight", Target: "weight", Shape: "[3 1]"},
		{Op: edit.CallFunction, Name: "dot_general", Target: "DotGeneral", Args: []string{"x", "weight"}, Shape: "[2 1]"},
		{Op: edit.CallFunction, Name: "reduce_sum", Target: "ReduceSum", Args: []string{"dot_general"}, Kwargs: "axes=[1]", Shape: "[2]"},
		{Op: edit.Output, Name: "output", Target: "output", Args: []string{"reduce_sum"}},
	}}
	fmt.Print(gr.Table())
	fmt.Println()
	fmt.Print(gr.Code())
	// Output:
	// opcode         name         target      args            kwargs      shape
	// -------------  -----------  ----------  --------------  ----------  -----
	// placeholder    x            x           ()              {}          [2 3]
	// get_attr       weight       weight      ()              {}          [3 1]
	// call_function  dot_general  DotGeneral  (x, weight)     {}          [2 1]
	// call_function  reduce_sum   ReduceSum   (dot_general,)  {axes=[1]}  [2]
	// output         output       output      (reduce_sum,)   {}
	//
	// # layer1 (WrappedLayer)
	// def forward(self, x):  # x: [2 3]
	//     weight = self.weight  # [3 1]
	//     dot_general = DotGeneral(x, weight)  # [2 1]
	//     reduce_sum = ReduceSum(dot_general, axes=[1])  # [2]
	//     return (reduce_sum,)
}
