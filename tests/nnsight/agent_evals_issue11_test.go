package nnsight_test

import (
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/nnsight"
)

// agent-evals tasks/basic::basic_06_cache_explicit_modules
func TestAgentEval_Basic06CacheExplicitModules(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace("Caching test", func(tr *nnsight.Tracer) { c = tr.Cache("transformer.h.2", "transformer.h.7") })
	must(t, err)
	for _, p := range []string{"transformer.h.2", "transformer.h.7"} {
		if _, s := data(t, c.Get(p)); s[len(s)-1] != tinyConfig().NEmbd {
			t.Errorf("%s cached with shape %v", p, s)
		}
	}
	if got := cacheOutputs(c); len(got) != 2 {
		t.Errorf("cached outputs %v, want only the two blocks", got)
	}
}

// agent-evals tasks/intermediate::intermediate_04_iter_generation
func TestAgentEval_Intermediate04IterGeneration(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate("Hello", 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, 3, func(tr *nnsight.Tracer) { saveNextToken(tr, "step_tokens") })
	}, nnsight.IgnoreEOS())
	must(t, err)
	if got := stepTokens(t, gen.Saved, "step_tokens"); len(got) != 3 || fmtInts(got) != fmtInts(gen.NewTokens[0]) {
		t.Errorf("step_tokens %v, generated %v", got, gen.NewTokens[0])
	}
}

// agent-evals tasks/intermediate::intermediate_05_gradients
func TestAgentEval_Intermediate05Gradients(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("Hello world", func(tr *nnsight.Tracer) {
		h5 := tr.Module("transformer.h.5").Output()
		lg := tr.Logits()
		tr.Backward(func() *nnsight.Node { return g.ReduceAllSum(lg.Node()) }, func() { h5.Grad().Save("hidden_grad") })
	})
	must(t, err)
	d, s := f32(t, res, "hidden_grad")
	if s[len(s)-1] != tinyConfig().NEmbd || allZero(d) {
		t.Errorf("hidden_grad has shape %v, all zero %v", s, allZero(d))
	}
}

// agent-evals tasks/intermediate::intermediate_06_promptless_invoke
func TestAgentEval_Intermediate06PromptlessInvoke(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		for _, p := range []string{"A", "B", "C"} {
			tr.Invoke(p, nil)
		}
		tr.Invoke(nil, func(iv *nnsight.Tracer) { iv.Logits().Save("combined_logits") })
	})
	must(t, err)
	if _, s := f32(t, res, "combined_logits"); s[0] != 3 || s[2] != vocab {
		t.Errorf("combined_logits has shape %v, want [3 _ %d]", s, vocab)
	}
}

// agent-evals tasks/intermediate::intermediate_07_conditional_generation
// Zeroing layer 0 at step 2 only: steps 0 and 1 predict what the plain generation does.
func TestAgentEval_Intermediate07ConditionalGeneration(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate("Hello", 5, func(tr *nnsight.Tracer) {
		tr.Iter(0, 5, func(tr *nnsight.Tracer) {
			if tr.Step() == 2 {
				tr.Module("transformer.h.0").Output().Set(0.0)
			}
			saveNextToken(tr, "step_predictions")
		})
	}, nnsight.IgnoreEOS())
	must(t, err)
	preds := stepTokens(t, gen.Saved, "step_predictions")
	if len(preds) != 5 {
		t.Fatalf("%d predictions, want 5", len(preds))
	}
	plain, err := m.Generate("Hello", 2, nil, nnsight.IgnoreEOS())
	must(t, err)
	if fmtInts(preds[:2]) != fmtInts(plain.NewTokens[0]) {
		t.Errorf("steps 0-1 predict %v, the plain generation %v", preds[:2], plain.NewTokens[0])
	}
}

// agent-evals tasks/intermediate::intermediate_08_per_step_capture
func TestAgentEval_Intermediate08PerStepCapture(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate("Hello", 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, 3, func(tr *nnsight.Tracer) { tr.Module("transformer.h[-1]").Output().Save("hs") })
	}, nnsight.IgnoreEOS())
	must(t, err)
	hs := gen.Saved.List("hs")
	if len(hs) != 3 {
		t.Fatalf("%d steps captured, want 3", len(hs))
	}
	for i, x := range hs {
		if _, s := data(t, x); s[len(s)-1] != tinyConfig().NEmbd {
			t.Errorf("hs_step%d has shape %v", i, s)
		}
	}
}

// agent-evals tasks/intermediate::intermediate_11_empty_invoke_post_iter
func TestAgentEval_Intermediate11EmptyInvokePostIter(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(nil, 4, func(tr *nnsight.Tracer) {
		tr.Invoke("Hello", func(iv *nnsight.Tracer) {
			iv.Iter(0, 4, func(iv *nnsight.Tracer) { saveNextToken(iv, "step_logits") })
		})
		tr.Invoke(nil, nil)
	}, nnsight.IgnoreEOS())
	must(t, err)
	if got := stepTokens(t, gen.Saved, "step_logits"); len(got) != 4 || fmtInts(got) != fmtInts(gen.NewTokens[0]) {
		t.Errorf("step_logits %v, generated %v", got, gen.NewTokens[0])
	}
	if len(gen.Tokens) != 1 {
		t.Errorf("gen_result has %d rows; the prompt-less invoke adds none", len(gen.Tokens))
	}
}

// agent-evals tasks/intermediate::intermediate_12_bounded_iter_slice
func TestAgentEval_Intermediate12BoundedIterSlice(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate("Hello", 5, func(tr *nnsight.Tracer) {
		tr.Iter(1, 3, func(tr *nnsight.Tracer) { saveNextToken(tr, "mid_step_tokens") })
	}, nnsight.IgnoreEOS())
	must(t, err)
	if got := stepTokens(t, gen.Saved, "mid_step_tokens"); fmtInts(got) != fmtInts(gen.NewTokens[0][1:3]) {
		t.Errorf("mid_step_tokens %v, generated tokens 1-2 %v", got, gen.NewTokens[0][1:3])
	}
}

// agent-evals tasks/advanced::advanced_03_caching
func TestAgentEval_Advanced03Caching(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	res, err := m.Trace("Hello world", func(tr *nnsight.Tracer) {
		c = tr.Cache()
		tr.Module("transformer.h.5").Output().Save("h5")
	})
	must(t, err)
	h5, _ := f32(t, res, "h5")
	if !equal(cached(t, c, "transformer.h.5"), h5) {
		t.Error("cached_layer5 is not h.5's output")
	}
}
