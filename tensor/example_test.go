package tensor_test

import (
	"fmt"

	"github.com/gonnsight/gonnsight/tensor"
)

// Logits of two positions over a five-token vocabulary: the next token's probabilities, its
// top 2, the greedy token per position, and how far the two positions are apart.
func Example() {
	logits := tensor.Of([][][]float32{{
		{2, 1, 0, -1, 0.5},
		{0, 3, 1, 0, 0},
	}}).WithAxes("batch", "pos", "vocab")

	probs, ids := logits.At(0, -1).Softmax(-1).TopK(2)
	fmt.Println(ids.Ints(), probs)
	fmt.Println("greedy:", logits.ArgMax(-1).Ints())
	fmt.Println("mean over positions:", logits.Mean(logits.Axis("pos")))
	a, b := logits.At(0, 0), logits.At(0, 1)
	fmt.Printf("distance %.4f, cosine %.4f\n", a.Sub(b).Norm(-1).Item(), tensor.CosineSim(a, b, -1).Item())
	fmt.Println(tensor.Stack([]*tensor.Tensor{a, b}, 0).Shape())
	// Output:
	// [1 2] float32[2] (vocab)
	// [0.7784, 0.1053]
	// greedy: [0 1]
	// mean over positions: float32[1 5] (batch, vocab)
	// [[ 1.0000,  2.0000,  0.5000, -0.5000,  0.2500]]
	// distance 3.2016, cosine 0.3795
	// [2 5]
}

// Errors panic with the operation, the shapes and what was valid; Catch makes them errors.
func ExampleCatch() {
	x := tensor.Zeros(2, 3).WithAxes("pos", "embd")
	err := tensor.Catch(func() { x.Add(tensor.Zeros(2)) })
	fmt.Println(err)
	err = tensor.Catch(func() { x.At(5) })
	fmt.Println(err)
	// Output:
	// tensor.Add: shapes [2 3] (pos, embd) and [2] do not broadcast: axis -1 (from the end) has size 3 vs 2; sizes must match or one be 1
	// tensor.At: index 5 is out of range for axis 0 (pos) of size 2 (shape [2 3] (pos, embd)): valid are 0..1 or -2..-1
}
