package display_test

import (
	"fmt"

	"github.com/gonnsight/gonnsight/display"
	"github.com/gonnsight/gonnsight/edit"
)

func ExampleGraphText() {
	gr := &edit.Graph{Module: "layer1", Type: "WrappedLayer", Nodes: []*edit.GNode{
		{Op: edit.Placeholder, Name: "x", Target: "x", Shape: "[2 3]"},
		{Op: edit.GetAttr, Name: "weight", Target: "weight", Shape: "[3 1]"},
		{Op: edit.CallFunction, Name: "dot_general", Target: "DotGeneral", Args: []string{"x", "weight"}, Shape: "[2 1]"},
		{Op: edit.CallFunction, Name: "reduce_sum", Target: "ReduceSum", Args: []string{"dot_general"}, Kwargs: "axes=[1]", Shape: "[2]"},
		{Op: edit.Output, Name: "output", Target: "output", Args: []string{"reduce_sum"}},
	}}
	fmt.Println(display.GraphText(gr))
	fmt.Println()
	fmt.Println(display.GraphCode(gr))
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

func ExampleTensorText() {
	fmt.Println(display.TensorText([]float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2}))
	fmt.Println(display.TensorText([]float32{0, 1, 2, 3, 4, 5, 6, 7}, []int{8}))
	// Output:
	// [[0.1 0.2]
	//  [0.3 0.4]]
	// shape=[2 2] dtype=float32
	// [0. 1. 2. ... 5. 6. 7.]
	// shape=[8] dtype=float32
}

// Outside a notebook a heatmap prints as a table; in a notebook it is a picture whose colours,
// here, run from white at the smallest difference to red at the largest (all are negative, so
// the scale is sequential unless Center or Diverging says otherwise).
func ExampleShowHeatmap() {
	diff := []float32{-7.5, -3.25, -5, -6}
	display.ShowHeatmap(diff, 2, 2, []string{"layer 0", "layer 1"}, []string{" Mary", " John"}, "logit diff",
		display.Axes("patched layer", "patched position"), display.ValueTitle("logit diff (Mary - John)"))
	// Output:
	// logit diff
	//          ␣Mary  ␣John
	// -------  -----  -----
	// layer 0   -7.5  -3.25
	// layer 1     -5     -6
}
