package nnsight_test

// Ports of ndif-team/nnsight tests/test_lm.py that need the API being added: prompt-less
// invokes, invokes in Generate, Iter/All, Streamer, Backward bodies and gradient sets, a
// cache inside a trace, Set of another shape, Rename, negative indices and typed errors.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/nnsight"
)

// stepTokens is a per-step integer value (an ArgMax saved in each step) as one int per step.
func stepTokens(t *testing.T, res *nnsight.Result, name string) []int {
	t.Helper()
	var out []int
	for _, x := range res.List(name) {
		v, _, err := nnsight.Ints(x)
		must(t, err)
		out = append(out, v[0])
	}
	return out
}

// saveNextToken saves, under name, the argmax of the last position of the first row of the
// tracer's logits (the peer's lm_head.output[0][-1].argmax(dim=-1)).
func saveNextToken(tr *nnsight.Tracer, name string) {
	lg := tr.Logits().At(0, 0, 1).At(1, -1, 0)
	tr.Compute(name, func() *nnsight.Node { return g.ArgMax(lg.Node(), -1) })
}

// greedy is the prompt's greedy continuation, generated alone.
func greedy(t *testing.T, m *nnsight.Model, prompt string, n int) []int {
	t.Helper()
	gen, err := m.Generate(prompt, n, nil)
	must(t, err)
	return gen.NewTokens[0]
}

// tests/test_lm.py::TestEmbeddings::test_embedding_transfer_with_barrier
// Invokes run as one batched forward: invoke 1 reads invoke 0's embeddings directly.
func TestLM_Embeddings_EmbeddingTransferWithBarrier(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(nil, 3, func(tr *nnsight.Tracer) {
		var emb *nnsight.Proxy
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) { emb = iv.Module("transformer.wte").Output() })
		tr.Invoke("_ _ _ _ _ _ _ _ _", func(iv *nnsight.Tracer) {
			if iv.Step() == 0 {
				iv.Module("transformer.wte").Output().Set(emb)
			}
		})
	})
	must(t, err)
	want := greedy(t, m, msgPrompt, 3)
	if fmt.Sprint(gen.NewTokens[0]) != fmt.Sprint(want) {
		t.Errorf("invoke 0 generated %v, the prompt alone %v", gen.NewTokens[0], want)
	}
	if fmt.Sprint(gen.NewTokens[1]) != fmt.Sprint(want) {
		t.Errorf("with invoke 0's embeddings invoke 1 generated %v, want %v", gen.NewTokens[1], want)
	}
}

// tests/test_lm.py::TestGradients::test_grad_access_and_modify
// Setting a gradient changes only what flows backward from that point: the upstream
// gradient becomes zero, the forward (logits) does not change.
func TestLM_Gradients_GradAccessAndModify(t *testing.T) {
	m := lm(t)
	plain, err := m.Trace("Hello World", nil)
	must(t, err)
	for _, form := range []string{"value", "func"} {
		res, err := m.Trace("Hello World", func(tr *nnsight.Tracer) {
			hs := tr.Module("transformer.h[-1]").Output()
			up := tr.Module("transformer.h[-2]").Output()
			lg := tr.Logits()
			tr.Backward(func() *nnsight.Node { return g.ReduceAllSum(lg.Node()) }, func() {
				if form == "value" {
					hs.Grad().Set(0.0)
				} else {
					hs.Grad().Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
				}
				hs.Grad().Save("hs_grad")
				up.Grad().Save("upstream_grad")
			})
		})
		must(t, err)
		if d, _ := f32(t, res, "hs_grad"); !allZero(d) {
			t.Errorf("%s: the gradient read after [:] = 0 is not zero", form)
		}
		if d, _ := f32(t, res, "upstream_grad"); !allZero(d) {
			t.Errorf("%s: h[-2]'s gradient is not zero although everything flows through h[-1]", form)
		}
		a, _ := logits(t, plain)
		b, _ := logits(t, res)
		if !equal(a, b) {
			t.Errorf("%s: setting a gradient changed the logits", form)
		}
	}
}

// tests/test_lm.py::TestGradients::test_multi_backward
// Two passes are independent: the pass over 2·loss sees twice the gradients.
func TestLM_Gradients_MultiBackward(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("Hello World", func(tr *nnsight.Tracer) {
		hs := tr.Module("transformer.h[-1]").Output()
		lg := tr.Logits()
		tr.Backward(func() *nnsight.Node { return g.ReduceAllSum(lg.Node()) }, func() { hs.Grad().Save("g1") })
		tr.Backward(func() *nnsight.Node { return g.MulScalar(g.ReduceAllSum(lg.Node()), 2) }, func() { hs.Grad().Save("g2") })
	})
	must(t, err)
	g1, _ := f32(t, res, "g1")
	g2, _ := f32(t, res, "g2")
	if equal(g1, g2) {
		t.Fatal("the two passes gave equal gradients")
	}
	twice := make([]float32, len(g1))
	for i, x := range g1 {
		twice[i] = 2 * x
	}
	if !close(g2, twice, 1e-4*nnsight.MaxAbs(twice)+1e-6) {
		t.Errorf("the pass over 2·loss is not twice the first: differs by %g", nnsight.MaxAbsDiff(g2, twice))
	}
}

// tests/test_lm.py::TestInvokerBatching::test_invoker_group_batching
func TestLM_InvokerBatching_InvokerGroupBatching(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(etPrompt, func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("out_1") })
		tr.Invoke([]string{msgPrompt, etPrompt}, func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("out_2") })
		tr.Invoke(nil, func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("out_3") })
		tr.Invoke(nil, func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("out_4") })
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("out_5") })
	})
	must(t, err)
	out := map[string][]float32{}
	for name, batch := range map[string]int{"out_1": 1, "out_2": 2, "out_3": 4, "out_4": 4, "out_5": 1} {
		d, s := f32(t, res, name)
		if s[0] != batch {
			t.Errorf("%s has batch %d, want %d", name, s[0], batch)
		}
		out[name] = d
	}
	if !equal(out["out_1"], rowsOf(out["out_2"], []int{2}, 1, 2)) {
		t.Error("out_1 != out_2[1]")
	}
	if !equal(out["out_3"], out["out_4"]) {
		t.Error("the two prompt-less invokes differ")
	}
	cat := append(append(append([]float32(nil), out["out_1"]...), out["out_2"]...), out["out_5"]...)
	if !equal(cat, out["out_3"]) {
		t.Error("the prompt-less invoke is not the concatenation of the invokes' rows")
	}
}

// tests/test_lm.py::TestInvokerBatching::test_invoke_list_attention_mask
func TestLM_InvokerBatching_InvokeListAttentionMask(t *testing.T) {
	m := lm(t)
	cases := []struct {
		list    []string
		invokes [][]string
	}{
		{[]string{"Hi", "A B C", "D"}, [][]string{{"Hi"}, {"A B C", "D"}}},
		{[]string{"A B C", "D", "Hi"}, [][]string{{"A B C", "D"}, {"Hi"}}},
		{[]string{"Hi", "A B C", "The quick brown fox", "D"}, [][]string{{"Hi", "A B C"}, {"The quick brown fox", "D"}}},
	}
	for _, c := range cases {
		res1, err := m.Trace(c.list, func(tr *nnsight.Tracer) { tr.Logits().At(1, -1, 0).Save("l") })
		must(t, err)
		res2, err := m.Trace(nil, func(tr *nnsight.Tracer) {
			for _, in := range c.invokes {
				if len(in) == 1 {
					tr.Invoke(in[0], nil)
				} else {
					tr.Invoke(in, nil)
				}
			}
			tr.Invoke(nil, func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("l") })
		})
		must(t, err)
		a, _ := f32(t, res1, "l")
		b, _ := f32(t, res2, "l")
		if !close(a, b, 1e-5) {
			t.Errorf("%v as one list vs invokes %v: differ by %g", c.list, c.invokes, nnsight.MaxAbsDiff(a, b))
		}
	}
}

// tests/test_lm.py::TestScan::test_scan_with_intervention
func TestLM_Scan_ScanWithIntervention(t *testing.T) {
	m := lm(t)
	e := tinyConfig().NEmbd
	ones := make([]float32, e)
	for i := range ones {
		ones[i] = 1
	}
	s, err := m.Scan(msgPrompt, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp.c_proj").Output().Set(tensors.FromFlatDataAndDimensions(ones, 1, 1, e))
	})
	must(t, err)
	if got := fmt.Sprint(s.Shapes["transformer.h.0.mlp.c_proj"].Dims); got != fmt.Sprint([]int{1, 1, e}) {
		t.Errorf("c_proj's output has shape %s after the set, want [1 1 %d]", got, e)
	}
}

// tests/test_lm.py::TestSource::test_source_operation_not_found
func TestLM_Source_SourceOperationNotFound(t *testing.T) {
	m := lm(t)
	_, err := m.Trace("_", func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.attn.my_func").Output().Save("out") })
	if !errors.Is(err, nnsight.ErrUnknownPath) {
		t.Fatalf("want ErrUnknownPath, got %v", err)
	}
	if !strings.Contains(err.Error(), "my_func") || !strings.Contains(err.Error(), "query") {
		t.Errorf("the error should name my_func and the values that exist (query, ...): %v", err)
	}
}

// tests/test_lm.py::TestIteration::test_iter_and_all
// The peer checks GPT-2's " New York City"; here: each step's argmax is the token Generate
// chose (greedy), with All and with Iter(0, AllSteps).
func TestLM_Iteration_IterAndAll(t *testing.T) {
	m := lm(t)
	for _, form := range []string{"all", "iter"} {
		gen, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
			body := func(tr *nnsight.Tracer) { saveNextToken(tr, "tok") }
			if form == "all" {
				tr.All(body)
			} else {
				tr.Iter(0, nnsight.AllSteps, body)
			}
		})
		must(t, err)
		got := stepTokens(t, gen.Saved, "tok")
		if len(got) != 3 || fmt.Sprint(got) != fmt.Sprint(gen.NewTokens[0]) {
			t.Errorf("%s: per-step argmax %v, generated %v", form, got, gen.NewTokens[0])
		}
	}
}

// tests/test_lm.py::TestIteration::test_iter_with_block
// Python's `with tracer.iter[:]` and `for step in tracer.iter[:]` are one form in Go.
func TestLM_Iteration_IterWithBlock(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) { saveNextToken(tr, "tok") })
	})
	must(t, err)
	if got := stepTokens(t, gen.Saved, "tok"); fmt.Sprint(got) != fmt.Sprint(greedy(t, m, msgPrompt, 3)) {
		t.Errorf("per-step argmax %v", got)
	}
}

// tests/test_lm.py::TestIteration::test_iter_slice
func TestLM_Iteration_IterSlice(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(msgPrompt, 5, func(tr *nnsight.Tracer) {
		tr.Iter(1, 3, func(tr *nnsight.Tracer) { saveNextToken(tr, "tok") })
	})
	must(t, err)
	got := stepTokens(t, gen.Saved, "tok")
	if fmt.Sprint(got) != fmt.Sprint(gen.NewTokens[0][1:3]) {
		t.Errorf("steps 1-2 gave %v, the generated tokens 1-2 are %v", got, gen.NewTokens[0][1:3])
	}
}

// tests/test_lm.py::TestIteration::test_iter_idx
func TestLM_Iteration_IterIdx(t *testing.T) {
	m := lm(t)
	gen1, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
		for i := 0; i < 3; i++ {
			tr.Iter(i, i+1, func(tr *nnsight.Tracer) { tr.Module(fmt.Sprintf("transformer.h.%d", i)).Output().Save("hs") })
		}
	})
	must(t, err)
	gen2, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
		tr.Iter(0, 3, func(tr *nnsight.Tracer) { tr.Module(fmt.Sprintf("transformer.h[%d]", tr.Step())).Output().Save("hs") })
	})
	must(t, err)
	a, b := gen1.Saved.List("hs"), gen2.Saved.List("hs")
	if len(a) != 3 || len(b) != 3 {
		t.Fatalf("%d and %d values, want 3 each", len(a), len(b))
	}
	for i := range a {
		x, _ := data(t, a[i])
		y, _ := data(t, b[i])
		if !equal(x, y) {
			t.Errorf("step %d differs", i)
		}
	}
}

// tests/test_lm.py::TestIteration::test_batched_iter
func TestLM_Iteration_BatchedIter(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(nil, 5, func(tr *nnsight.Tracer) {
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Iter(1, 3, func(iv *nnsight.Tracer) { saveNextToken(iv, "logits_1") })
		})
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Iter(0, 3, func(iv *nnsight.Tracer) { saveNextToken(iv, "logits_2") })
		})
	})
	must(t, err)
	want := greedy(t, m, msgPrompt, 3)
	if got := stepTokens(t, gen.Saved, "logits_1"); fmt.Sprint(got) != fmt.Sprint(want[1:3]) {
		t.Errorf("invoke 0, steps 1-2: %v, want %v", got, want[1:3])
	}
	if got := stepTokens(t, gen.Saved, "logits_2"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("invoke 1, steps 0-2: %v, want %v", got, want)
	}
}

// tests/test_lm.py::TestIteration::test_iter_and_skip
// With the KV cache, skipping a block at one step would leave that step's keys and values
// out of its cache, and later steps would attend over them: gonnsight rejects it, naming
// NoCache(), with which every step recomputes every position and the peer's checks hold.
func TestLM_Iteration_IterAndSkip(t *testing.T) {
	m := lm(t)
	fn := func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) {
			if tr.Step() == 1 {
				tr.Module("transformer.h.1").Skip(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
			}
			tr.Module("transformer.h.1").Output().Save("arr_gen")
		})
	}
	if _, err := m.Generate("_", 3, fn, nnsight.IgnoreEOS()); err == nil || !strings.Contains(err.Error(), "NoCache") {
		t.Errorf("a skip at one step with the KV cache: want an error naming NoCache, got %v", err)
	}
	gen, err := m.Generate("_", 3, fn, nnsight.NoCache(), nnsight.IgnoreEOS())
	must(t, err)
	arr := gen.Saved.List("arr_gen")
	if len(arr) != 3 {
		t.Fatalf("%d values, want 3", len(arr))
	}
	for i, x := range arr {
		d, _ := data(t, x)
		if allZero(d) != (i == 1) {
			t.Errorf("step %d: all zero = %v", i, allZero(d))
		}
	}
}

// tests/test_lm.py::TestIteration::test_iter_with_promptless_invokers
func TestLM_Iteration_IterWithPromptlessInvokers(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(etPrompt, nil)
		tr.Invoke(nil, func(iv *nnsight.Tracer) { iv.Module("transformer.h.0").Output().Save("out") })
		tr.Invoke(nil, func(iv *nnsight.Tracer) {
			iv.Iter(0, 1, func(iv *nnsight.Tracer) { iv.Module("transformer.h.0").Output().Set(0.0) })
		})
		tr.Invoke(nil, func(iv *nnsight.Tracer) { iv.Module("transformer.h.0").Output().Save("out_2") })
	})
	must(t, err)
	if d, _ := f32(t, res, "out"); allZero(d) {
		t.Error("the value read before the set is zero")
	}
	if d, _ := f32(t, res, "out_2"); !allZero(d) {
		t.Error("the value read after the set is not zero")
	}
}

// tests/test_lm.py::TestIteration::test_slice_iter_with_envoy_called_before
func TestLM_Iteration_SliceIterWithEnvoyCalledBefore(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate("_", 5, func(tr *nnsight.Tracer) {
		if tr.Step() == 0 { // nnsight's code outside an iter loop acts on the first step
			tr.Module("transformer.h.0").Output().Save("out")
		}
		tr.Iter(2, 4, func(tr *nnsight.Tracer) { tr.Logits().Save("lg") })
	})
	must(t, err)
	if gen.Saved.Get("out") == nil {
		t.Error("out not saved")
	}
	if n := len(gen.Saved.List("lg")); n != 2 {
		t.Errorf("%d logits saved, want 2", n)
	}
}

// tests/test_lm.py::TestIteration::test_iter_with_batched_interventions
// The peer checks the two prompts predict different tokens (true for GPT-2); for any
// weights: each invoke's tokens are its prompt's tokens alone.
func TestLM_Iteration_IterWithBatchedInterventions(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(nil, 3, func(tr *nnsight.Tracer) {
		tr.Invoke(etPrompt, func(iv *nnsight.Tracer) {
			iv.Iter(0, nnsight.AllSteps, func(iv *nnsight.Tracer) { saveNextToken(iv, "logits_1") })
		})
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Iter(0, 3, func(iv *nnsight.Tracer) { saveNextToken(iv, "logits_2") })
		})
	})
	must(t, err)
	if got, want := stepTokens(t, gen.Saved, "logits_1"), greedy(t, m, etPrompt, 3); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("invoke 0: %v, the prompt alone: %v", got, want)
	}
	if got, want := stepTokens(t, gen.Saved, "logits_2"), greedy(t, m, msgPrompt, 3); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("invoke 1: %v, the prompt alone: %v", got, want)
	}
}

// tests/test_lm.py::TestIteration::test_iter_module
// In a plain trace, Iter over all steps runs its body once (the trace is step 0 of 1).
func TestLM_Iteration_IterModule(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		tr.Iter(0, nnsight.AllSteps, func(tr *nnsight.Tracer) { saveNextToken(tr, "tok") })
	})
	must(t, err)
	if _, _, err := res.Ints("tok"); err != nil {
		t.Error(err)
	}
}

// nnsight's tracer.cache() keys are "model.<path>" with .output/.inputs; gonnsight's are the
// path (the output) and "<path>.input" (the first input).

func cacheOutputs(c *nnsight.Cache) []string {
	var out []string
	for _, p := range c.Paths {
		if !strings.HasSuffix(p, ".input") {
			out = append(out, p)
		}
	}
	return out
}

func cached(t *testing.T, c *nnsight.Cache, key string) []float32 {
	t.Helper()
	x := c.Get(key)
	if x == nil {
		t.Fatalf("%q is not in the cache; cached: %v", key, c.Paths)
	}
	d, _ := data(t, x)
	return d
}

// tests/test_lm.py::TestCache::test_basic_cache
// nnsight caches no inputs unless asked (include_inputs); gonnsight always caches them.
func TestLM_Cache_BasicCache(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { c = tr.Cache() })
	must(t, err)
	cached(t, c, "transformer.h.0")
}

// tests/test_lm.py::TestCache::test_cache_output_and_inputs
func TestLM_Cache_CacheOutputAndInputs(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { c = tr.Cache() })
	must(t, err)
	if !equal(cached(t, c, "transformer.h.0"), cached(t, c, "transformer.h.1.input")) {
		t.Error("h.0's output != h.1's input")
	}
}

// tests/test_lm.py::TestCache::test_cache_inputs_only
// gonnsight has no outputs-off switch: the inputs are there with the outputs.
func TestLM_Cache_CacheInputsOnly(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { c = tr.Cache() })
	must(t, err)
	cached(t, c, "transformer.h.0.input")
}

// tests/test_lm.py::TestCache::test_cache_generation
func TestLM_Cache_CacheGeneration(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) { c = tr.Cache("transformer.h.0.attn.c_attn") })
	must(t, err)
	if n := len(c.List("transformer.h.0.attn.c_attn")); n != 3 {
		t.Errorf("%d cached steps, want 3", n)
	}
}

// tests/test_lm.py::TestCache::test_cache_with_intervention
func TestLM_Cache_CacheWithIntervention(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		c = tr.Cache()
		tr.Module("transformer.h.0.attn.c_attn").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
	})
	must(t, err)
	if !allZero(cached(t, c, "transformer.h.0.attn.c_attn")) {
		t.Error("the cache holds c_attn's output before the intervention")
	}
}

// tests/test_lm.py::TestCache::test_cache_single_invoker
func TestLM_Cache_CacheSingleInvoker(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(msgPrompt, nil)
		tr.Invoke(etPrompt, func(iv *nnsight.Tracer) {
			c = iv.Cache()
			iv.Module("transformer.h.0.attn.c_attn").Output().Save("attn_out")
		})
	})
	must(t, err)
	a, _ := f32(t, res, "attn_out")
	if !equal(cached(t, c, "transformer.h.0.attn.c_attn"), a) {
		t.Error("the invoke's cache is not its rows")
	}
}

// tests/test_lm.py::TestCache::test_cache_after_intervention
// nnsight's cache starts where it is asked for (h.0 is not in it); gonnsight's covers the
// whole forward wherever it is asked for, after every intervention.
func TestLM_Cache_CacheAfterIntervention(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.1.attn.c_attn").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
		c = tr.Cache()
	})
	must(t, err)
	if !equal(cached(t, c, "transformer.h.2"), cached(t, c, "transformer.h.3.input")) {
		t.Error("h.2's output != h.3's input")
	}
	cached(t, c, "transformer")
	if !allZero(cached(t, c, "transformer.h.1.attn.c_attn")) {
		t.Error("the cache does not hold the intervened value")
	}
}

// tests/test_lm.py::TestCache::test_cache_skip
func TestLM_Cache_CacheSkip(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	res, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		c = tr.Cache()
		h0 := tr.Module("transformer.h.0").Output()
		h0.Save("out")
		tr.Module("transformer.h.1").Skip(h0)
	})
	must(t, err)
	out, _ := f32(t, res, "out")
	if !equal(cached(t, c, "transformer.h.1"), out) {
		t.Error("the skipped module's cached output is not the skip value")
	}
}

// tests/test_lm.py::TestCache::test_cache_some_modules
func TestLM_Cache_CacheSomeModules(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		c = tr.Cache("transformer.h.0", "transformer.h.1", "transformer.h.2")
	})
	must(t, err)
	if got := cacheOutputs(c); len(got) != 3 {
		t.Errorf("cached outputs %v, want 3", got)
	}
	if !equal(cached(t, c, "transformer.h.0"), cached(t, c, "transformer.h.1.input")) {
		t.Error("h.0's output != h.1's input")
	}
}

// tests/test_lm.py::TestCache::test_cache_some_modules_by_ref
func TestLM_Cache_CacheSomeModulesByRef(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { c = tr.Cache("transformer.h.*") })
	must(t, err)
	if got := cacheOutputs(c); len(got) != 12 {
		t.Errorf("cached outputs %v, want the 12 blocks", got)
	}
	if !equal(cached(t, c, "transformer.h.0"), cached(t, c, "transformer.h.1.input")) {
		t.Error("h.0's output != h.1's input")
	}
}

// tests/test_lm.py::TestCache::test_cache_some_modules_generation
func TestLM_Cache_CacheSomeModulesGeneration(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Generate(msgPrompt, 2, func(tr *nnsight.Tracer) {
		c = tr.Cache("transformer.h.0", "transformer.h.1", "transformer.h.2")
	})
	must(t, err)
	if got := cacheOutputs(c); len(got) != 3 {
		t.Errorf("cached outputs %v, want 3", got)
	}
	if n := len(c.List("transformer.h.0")); n != 2 {
		t.Errorf("%d steps cached, want 2", n)
	}
}

// tests/test_lm.py::TestCache::test_multiple_caches
func TestLM_Cache_MultipleCaches(t *testing.T) {
	m := lm(t)
	var attn, mlp *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		attn = tr.Cache("transformer.h.*.attn")
		mlp = tr.Cache("transformer.h.*.mlp")
	})
	must(t, err)
	if len(cacheOutputs(attn)) != 12 || len(cacheOutputs(mlp)) != 12 {
		t.Errorf("attn cache %v, mlp cache %v: want 12 each", cacheOutputs(attn), cacheOutputs(mlp))
	}
	if attn.Get("transformer.h.0.attn") == nil || attn.Get("transformer.h.0.mlp") != nil {
		t.Error("the attn cache must hold attn and not mlp")
	}
	if mlp.Get("transformer.h.0.mlp") == nil || mlp.Get("transformer.h.0.attn") != nil {
		t.Error("the mlp cache must hold mlp and not attn")
	}
}

// tests/test_lm.py::TestCache::test_cache_attribute_access
// Attribute access (cache.model.transformer.h[0]) is Python's; the keys and what is absent
// carry over.
func TestLM_Cache_CacheAttributeAccess(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	_, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { c = tr.Cache("transformer.h.*", "lm_head") })
	must(t, err)
	if got := cacheOutputs(c); len(got) != 13 {
		t.Errorf("cached outputs %v, want 13", got)
	}
	cached(t, c, "transformer.h.0")
	cached(t, c, "lm_head")
	for _, absent := range []string{"transformer.h.12", "transformer.h.0.mlp"} {
		if c.Get(absent) != nil {
			t.Errorf("%s should not be in the cache", absent)
		}
	}
}

// tests/test_lm.py::TestCache::test_cache_no_entry_input
// nnsight leaves the input out unless asked; gonnsight caches it: it is h.0's real input.
func TestLM_Cache_CacheNoEntryInput(t *testing.T) {
	m := lm(t)
	var c *nnsight.Cache
	res, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		c = tr.Cache("transformer.h.0")
		tr.Module("transformer.drop").Output().Save("drop")
	})
	must(t, err)
	d, _ := f32(t, res, "drop")
	if !equal(cached(t, c, "transformer.h.0.input"), d) {
		t.Error("h.0's cached input is not drop's output")
	}
}

// tests/test_lm.py::TestCache::test_cache_alias
func TestLM_Cache_CacheAlias(t *testing.T) {
	m := newLM(nnsight.Rename(map[string]string{"transformer.h.0": "first_layer", "transformer.h.1": "second_layer"}))
	var c *nnsight.Cache
	res, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		c = tr.Cache()
		tr.Module("first_layer").Output().Save("first")
		tr.Module("second_layer").Output().Save("second")
	})
	must(t, err)
	for real, alias := range map[string]string{"transformer.h.0": "first", "transformer.h.1": "second"} {
		a, _ := f32(t, res, alias)
		if !equal(cached(t, c, real), a) {
			t.Errorf("%s's cached output != the value read through its alias", real)
		}
	}
	if !equal(cached(t, c, "first_layer"), cached(t, c, "transformer.h.0")) {
		t.Error("the cache does not answer the alias")
	}
}

// renamed traces one value through a path and another, on a model with aliases.
func renamed(t *testing.T, rename map[string]string, path, alias string) {
	t.Helper()
	m := newLM(nnsight.Rename(rename))
	res, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		tr.Module(path).Output().Save("a")
		tr.Module(alias).Output().Save("b")
	})
	must(t, err)
	a, _ := f32(t, res, "a")
	b, _ := f32(t, res, "b")
	if !equal(a, b) {
		t.Errorf("%s and its alias %s differ", path, alias)
	}
}

// tests/test_lm.py::TestRename::test_rename_module
func TestLM_Rename_RenameModule(t *testing.T) {
	renamed(t, map[string]string{"mlp": "my_mlp"}, "transformer.h.0.mlp", "transformer.h.0.my_mlp")
	renamed(t, map[string]string{"mlp": "my_mlp"}, "transformer.h.1.mlp", "transformer.h.1.my_mlp")
}

// tests/test_lm.py::TestRename::test_rename_path
func TestLM_Rename_RenamePath(t *testing.T) {
	renamed(t, map[string]string{"transformer.h.3.mlp": "my_mlp"}, "transformer.h.3.mlp", "my_mlp")
	renamed(t, map[string]string{"transformer.h.3.mlp": "my_mlp"}, "transformer.h.0.mlp", "transformer.h.0.mlp")
	renamed(t, map[string]string{"transformer.h.3.mlp": "my_mlp"}, "transformer.h.5.mlp", "transformer.h.5.mlp")
}

// tests/test_lm.py::TestRename::test_rename_module_list
// The peer's key ".h" names the component h wherever it is.
func TestLM_Rename_RenameModuleList(t *testing.T) {
	renamed(t, map[string]string{"h": "layers"}, "transformer.h.0.mlp", "transformer.layers[0].mlp")
	renamed(t, map[string]string{"h": "layers"}, "transformer.h.1.mlp", "transformer.layers.1.mlp")
}

// tests/test_lm.py::TestRename::test_rename_module_list_path
func TestLM_Rename_RenameModuleListPath(t *testing.T) {
	renamed(t, map[string]string{"transformer.h": "layers"}, "transformer.h.0.mlp", "layers[0].mlp")
	renamed(t, map[string]string{"transformer.h": "layers"}, "transformer.h.1.mlp", "layers.1.mlp")
}

// streamed collects what the Streamer reports for the steps in [lo, hi).
func streamed(lo, hi int, got *[]int) nnsight.GenOption {
	return nnsight.Streamer(func(step int, toks []int) {
		if step >= lo && step < hi {
			*got = append(*got, toks[0])
		}
	})
}

// tests/test_lm.py::TestMiscellaneous::test_iter_with_streamer1
func TestLM_Miscellaneous_IterWithStreamer1(t *testing.T) {
	m := lm(t)
	var strm []int
	gen, err := m.Generate(msgPrompt, 10, func(tr *nnsight.Tracer) {
		tr.Iter(2, 6, func(tr *nnsight.Tracer) { tr.Module("transformer.h[-2]").Output().Save("hs") })
		tr.Iter(6, 8, func(tr *nnsight.Tracer) { tr.Module("transformer.h[-2]").Output().Save("hs") })
	}, streamed(2, 8, &strm), nnsight.IgnoreEOS())
	must(t, err)
	if n := len(gen.Saved.List("hs")); n != 6 {
		t.Errorf("%d hidden states, want 6", n)
	}
	if fmt.Sprint(strm) != fmt.Sprint(gen.NewTokens[0][2:8]) {
		t.Errorf("streamed %v, generated tokens 2-7 %v", strm, gen.NewTokens[0][2:8])
	}
}

// tests/test_lm.py::TestMiscellaneous::test_iter_with_streamer2
// The streamer read outside the iter loops is the first step's.
func TestLM_Miscellaneous_IterWithStreamer2(t *testing.T) {
	m := lm(t)
	var strm []int
	gen, err := m.Generate(msgPrompt, 10, func(tr *nnsight.Tracer) {
		tr.Iter(2, 6, func(tr *nnsight.Tracer) { tr.Module("transformer.h[-2]").Output().Save("hs") })
		tr.Iter(6, 8, func(tr *nnsight.Tracer) { tr.Module("transformer.h[-2]").Output().Save("hs") })
	}, nnsight.Streamer(func(step int, toks []int) {
		if step == 0 || (step >= 2 && step < 8) {
			strm = append(strm, toks[0])
		}
	}), nnsight.IgnoreEOS())
	must(t, err)
	if n := len(gen.Saved.List("hs")); n != 6 {
		t.Errorf("%d hidden states, want 6", n)
	}
	if len(strm) != 7 {
		t.Errorf("streamed %d tokens, want 7", len(strm))
	}
}
