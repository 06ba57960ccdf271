package display_test

import (
	"github.com/gonnsight/gonnsight/display"
)

// Outside a notebook a tensor prints as numpy does.
func ExampleShowTensor() {
	display.ShowTensor([]float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2})
	display.ShowTensor([]float32{0, 1, 2, 3, 4, 5, 6, 7}, []int{8})
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
