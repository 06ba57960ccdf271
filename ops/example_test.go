package ops_test

import (
	"fmt"

	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
)

// Graph operations inside a trace: a value computed from two points, saved like any other.
func ExampleSoftmax() {
	model := nnsight.LanguageModel("../testdata/gpt2/tiny-a", nnsight.WithBackend("go"))
	res, err := model.Trace([]int{503, 492, 54, 502}, func(t *nnsight.Tracer) {
		logits := t.Module("lm_head").Output()
		t.Compute("probs", func() *ops.Node { return ops.Softmax(logits.Node(), -1) })
		t.Compute("total", func() *ops.Node { return ops.ReduceSum(ops.Softmax(logits.Node(), -1), -1) })
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	probs, total := res.Tensor("probs"), res.Tensor("total")
	fmt.Println("probs", probs.Shape(), "each position sums to", total.Map(func(x float32) float32 {
		return float32(int(x*1000+0.5)) / 1000
	}).Data())
	// Output:
	// probs [1 4 512] each position sums to [1 1 1 1]
}
