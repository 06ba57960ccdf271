package nnsight

import (
	"math"

	"github.com/gonnsight/gonnsight/module"
)

// LogitLens (GPT-2 only: it reads GPT-2's parameter names) applies the final layer norm and the unembedding to a residual-stream value
// [batch, seq, hidden], giving logits as if the model stopped there. Use inside Compute.
func (t *Tracer) LogitLens(h *Node) *Node {
	cfg := t.tr.model.cfg
	c := t.tr.ctx
	if cfg == nil || c == nil {
		module.Errorf("LogitLens needs a GPT-2 model and must be called while the graph is built (inside Compute)")
	}
	e := cfg.NEmbd
	w := c.ParamFn("transformer.ln_f.weight", module.ParamSpec{Shape: []int{e}})
	b := c.ParamFn("transformer.ln_f.bias", module.ParamSpec{Shape: []int{e}})
	unembed := c.ParamFn(cfg.Unembedding(), module.ParamSpec{Shape: []int{cfg.VocabSize, e}})
	return module.MatMulLast(module.LayerNormOp(h, w, b, cfg.LayerNormEpsilon), unembed, 1)
}

// MaxAbsDiff is max |a[i] - b[i]| (NaN when the lengths differ).
func MaxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// MaxAbs is max |a[i]|.
func MaxAbs(a []float32) float64 {
	m := 0.0
	for _, x := range a {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}
