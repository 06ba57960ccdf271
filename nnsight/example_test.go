package nnsight_test

import (
	"fmt"
	"math"

	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
)

// Save a module's output and zero-ablate another in one trace.
func ExampleModel_Trace() {
	model := nnsight.LanguageModel("../testdata/gpt2/tiny-a", nnsight.WithBackend("go"))
	res, err := model.Trace([]int{503, 492, 54, 502}, func(t *nnsight.Tracer) {
		t.Module("transformer.h.0.mlp").Output().Save("mlp0")
		t.Module("transformer.h[1].attn").Output().Set(func(x *ops.Node) *ops.Node { return ops.ZerosLike(x) })
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mlp0 := res.Tensor("mlp0")
	logits := res.Tensor("logits")
	fmt.Println("mlp0", mlp0.Shape(), "first values", round3(mlp0.At(0, 0).Slice(-1, 0, 3).Data()))
	fmt.Println("logits", logits.Shape(), "next token", logits.At(0, -1).ArgMax(-1).Ints())
	// Output:
	// mlp0 [1 4 16] first values [-0.067 0.165 -0.13]
	// logits [1 4 512] next token [72]
}

// Patch a clean activation into a corrupted prompt, both in one batched run.
func ExampleTracer_Invoke() {
	model := nnsight.LanguageModel("../testdata/gpt2/tiny-a", nnsight.WithBackend("go"))
	res, err := model.Trace(nil, func(t *nnsight.Tracer) {
		var clean *nnsight.Proxy
		t.Invoke([]int{12, 340, 77, 205}, func(iv *nnsight.Tracer) {
			clean = iv.Module("transformer.h.0").Output().At(1, 2, 3) // position 2
		})
		t.Invoke([]int{12, 340, 266, 205}, func(iv *nnsight.Tracer) {
			iv.Module("transformer.h.0").Output().At(1, 2, 3).Set(clean)
			iv.Compute("diff", func() *ops.Node { return ops.LogitDiff(iv.Logits().Node(), 0, 5, 7) })
		})
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, shape, _ := res.Float32("diff")
	fmt.Printf("logit difference %.3f, shape %v\n", d[0], shape)
	// Output: logit difference -0.445, shape []
}

// Wrap an intermediate value of a module's forward with an edit.
func ExampleModel_LoadEdits() {
	model := nnsight.LanguageModel("../testdata/gpt2/tiny-a", nnsight.WithBackend("go"))
	wrapper := edit.New("transformer.h.1.attn", "query", "query_wrapper", edit.Identity())
	if err := model.LoadEdits(wrapper); err != nil {
		fmt.Println(err)
		return
	}
	res, _ := model.Trace([]int{1, 2, 3}, func(t *nnsight.Tracer) {
		t.Module("transformer.h.1.attn.query_wrapper").Output().Save("q")
	})
	q, shape, _ := res.Float32("q")
	fmt.Println("query [batch pos embd]:", shape, "edits:", model.Edits())
	fmt.Println("first values:", round3(q[:3]))
	// Output:
	// query [batch pos embd]: [1 3 16] edits: [WrapperModule(transformer.h.1.attn.query -> query_wrapper)]
	// first values: [-0.216 0.157 -0.311]
}

// round3 rounds to three decimals, for outputs that hold across CPUs.
func round3(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Round(float64(v)*1000) / 1000
	}
	return out
}
