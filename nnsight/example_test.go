package nnsight_test

import (
	"fmt"

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
	_, shape, _ := res.Float32("mlp0")
	_, logits, _ := res.Float32("logits")
	fmt.Println("mlp0", shape, "logits", logits)
	// Output: mlp0 [1 4 16] logits [1 4 512]
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
	_, shape, _ := res.Float32("diff")
	fmt.Println("logit difference, shape", shape)
	// Output: logit difference, shape []
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
	_, shape, _ := res.Float32("q")
	fmt.Println("query [batch pos embd]:", shape, "edits:", model.Edits())
	// Output: query [batch pos embd]: [1 3 16] edits: [WrapperModule(transformer.h.1.attn.query -> query_wrapper)]
}
