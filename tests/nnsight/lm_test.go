package nnsight_test

// Ports of ndif-team/nnsight tests/test_lm.py that use today's API. The ports that need the
// API being added (prompt-less invokes, invokes in Generate, Iter, Backward bodies, a cache
// inside a trace, Rename, typed errors) are in lm_issue11_test.go.

import (
	"fmt"
	"math"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

// tests/test_lm.py::TestGeneration::test_basic_generation
// The peer checks GPT-2's text (" New York City"); here: the 3 new tokens are the greedy
// continuation computed independently (full re-trace, argmax of the last position).
func TestLM_Generation_BasicGeneration(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(msgPrompt, 3, nil)
	must(t, err)
	p := tokens(t, m, msgPrompt)
	if len(gen.Tokens[0]) != len(p)+3 {
		t.Fatalf("generator output has %d tokens, want prompt (%d) + 3", len(gen.Tokens[0]), len(p))
	}
	if fmt.Sprint(gen.Tokens[0][:len(p)]) != fmt.Sprint(p) {
		t.Errorf("generator output does not start with the prompt: %v", gen.Tokens[0])
	}
	if want := plainGreedy(t, m, p, 3); fmt.Sprint(gen.NewTokens[0]) != fmt.Sprint(want) {
		t.Errorf("new tokens %v, greedy reference %v", gen.NewTokens[0], want)
	}
}

// tests/test_lm.py::TestGeneration::test_save_hidden_states
func TestLM_Generation_SaveHiddenStates(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate("Hello world", 3, func(tr *nnsight.Tracer) {
		if tr.Step() == 0 {
			tr.Module(last).Input().Save("hs_input")
			tr.Module(last).Output().Save("hs")
		}
	})
	must(t, err)
	for _, name := range []string{"hs_input", "hs"} {
		x := gen.Saved.Get(name)
		if x == nil {
			t.Fatalf("%s not saved", name)
		}
		if x.Rank() != 3 {
			t.Errorf("%s has rank %d, want 3", name, x.Rank())
		}
	}
}

// tests/test_lm.py::TestActivationModification::test_inplace_modification
func TestLM_ActivationModification_InplaceModification(t *testing.T) {
	m := lm(t)
	plain, err := m.Generate(msgPrompt, 3, nil)
	must(t, err)
	gen, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
		if tr.Step() == 0 {
			// A second read of the point before the set is the peer's .clone(): a proxy that is
			// later set shows the new value, as an un-cloned tensor does in nnsight.
			tr.Module(last).Output().Save("pre")
			tr.Module(last).Output().Set(0.0)
			tr.Module(last).Output().Save("post")
		}
	})
	must(t, err)
	pre, _ := data(t, gen.Saved.Get("pre"))
	post, _ := data(t, gen.Saved.Get("post"))
	if allZero(pre) {
		t.Error("pre (saved before the set) is all zero")
	}
	if !allZero(post) {
		t.Error("post (saved after [:] = 0) is not all zero")
	}
	if fmt.Sprint(gen.Tokens[0]) == fmt.Sprint(plain.Tokens[0]) {
		t.Errorf("zeroing the last block did not change the generation %v", gen.Tokens[0])
	}
}

// tests/test_lm.py::TestActivationModification::test_multiplication_modification
// The peer compares the generated text; the first step's logits are what the zeroed
// embedding changes for any weights.
func TestLM_ActivationModification_MultiplicationModification(t *testing.T) {
	m := lm(t)
	run := func(zero bool) *nnsight.Generation {
		gen, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
			if tr.Step() == 0 {
				tr.Module("transformer.wte").Output().Save("pre") // a separate read: the peer's clone()
				if zero {
					tr.Module("transformer.wte").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.MulScalar(x, 0) })
				}
				tr.Module("transformer.wte").Output().Save("post")
				tr.Logits().Save("step0_logits")
			}
		})
		must(t, err)
		return gen
	}
	gen := run(true)
	pre, _ := data(t, gen.Saved.Get("pre"))
	post, _ := data(t, gen.Saved.Get("post"))
	if allZero(pre) || !allZero(post) {
		t.Errorf("pre all zero: %v, post all zero: %v (want false, true)", allZero(pre), allZero(post))
	}
	a, _ := data(t, gen.Saved.Get("step0_logits"))
	b, _ := data(t, run(false).Saved.Get("step0_logits"))
	if equal(a, b) {
		t.Error("wte * 0 did not change the logits")
	}
}

// tests/test_lm.py::TestActivationModification::test_cross_invoke_isolation
// The peer checks invoke 2 still predicts " New"; here: invoke 2's prediction is the
// prompt's prediction alone.
func TestLM_ActivationModification_CrossInvokeIsolation(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Module(last).Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
		})
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Module(last).Output().Save("hs")
			iv.Logits().At(1, -1, 0).Save("out")
		})
	})
	must(t, err)
	checkIsolation(t, m, res)
}

func checkIsolation(t *testing.T, m *nnsight.Model, res *nnsight.Result) {
	t.Helper()
	hs, _ := f32(t, res, "hs")
	if !noneZero(hs) {
		t.Error("invoke 2's hidden states have zeros: invoke 1's set leaked into it")
	}
	out, s := f32(t, res, "out")
	alone, err := m.Trace(msgPrompt, nil)
	must(t, err)
	d, ds := logits(t, alone)
	if got, want := argmaxRows(out, s[len(s)-1])[0], argmaxRows(lastPos(d, ds), ds[2])[0]; got != want {
		t.Errorf("invoke 2 predicts %d, the prompt alone %d", got, want)
	}
}

// tests/test_lm.py::TestActivationModification::test_modification_with_grad
// requires_grad_ on the set value: here a gradient is asked for at the set point.
func TestLM_ActivationModification_ModificationWithGrad(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		var lg *nnsight.Proxy
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			h0 := iv.Module("transformer.h.0").Output()
			h0.Grad().Save("g")
			h0.Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
			lg = iv.Logits()
		})
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Module("transformer.h.0").Output().Save("hs")
			iv.Logits().At(1, -1, 0).Save("out")
		})
		tr.Backward(func() *nnsight.Node { return g.ReduceAllSum(lg.Node()) })
	})
	must(t, err)
	checkIsolation(t, m, res)
}

// tests/test_lm.py::TestAdhocModules::test_logit_lens
// The peer checks GPT-2's per-position text; here: lm_head(ln_f(h[-1])) is the model's own
// logits, so its argmax is the model's prediction at every position.
func TestLM_AdhocModules_LogitLens(t *testing.T) {
	m := lm(t)
	gen, err := m.Generate(etPrompt, 1, func(tr *nnsight.Tracer) {
		h := tr.Module(last).Output()
		tr.Compute("probs", func() *nnsight.Node { return g.Softmax(tr.LogitLens(h.Node()), 2) })
		tr.Logits().Save("model_logits")
	})
	must(t, err)
	probs, s := data(t, gen.Saved.Get("probs"))
	ml, _ := data(t, gen.Saved.Get("model_logits"))
	if got, want := argmaxRows(probs, s[2]), argmaxRows(ml, s[2]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("logit lens of the last block predicts %v, the model %v", got, want)
	}
}

// tests/test_lm.py::TestEmbeddings::test_embedding_transfer_separate_traces
// The peer checks that "_ _ _ ..." with the prompt's embeddings continues " New York City";
// here: it continues exactly as the prompt does (GPT-2 adds positions after wte).
func TestLM_Embeddings_EmbeddingTransferSeparateTraces(t *testing.T) {
	m := lm(t)
	if a, b := len(tokens(t, m, msgPrompt)), len(tokens(t, m, "_ _ _ _ _ _ _ _ _")); a != b {
		t.Fatalf("the prompts have %d and %d tokens; the transfer needs equal lengths", a, b)
	}
	gen1, err := m.Generate(msgPrompt, 3, func(tr *nnsight.Tracer) {
		if tr.Step() == 0 {
			tr.Module("transformer.wte").Output().Save("emb")
		}
	})
	must(t, err)
	emb := gen1.Saved.Get("emb")
	gen2, err := m.Generate("_ _ _ _ _ _ _ _ _", 3, func(tr *nnsight.Tracer) {
		if tr.Step() == 0 {
			tr.Module("transformer.wte").Output().Set(emb)
		}
	})
	must(t, err)
	if fmt.Sprint(gen2.NewTokens[0]) != fmt.Sprint(gen1.NewTokens[0]) {
		t.Errorf("with the prompt's embeddings: %v, the prompt itself: %v", gen2.NewTokens[0], gen1.NewTokens[0])
	}
}

// tests/test_lm.py::TestGradients::test_retain_grad
func TestLM_Gradients_RetainGrad(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("Hello World", func(tr *nnsight.Tracer) {
		h := tr.Module(last).Output()
		h.Save("hs")
		h.Grad().Save("hs_grad")
		lg := tr.Logits()
		tr.Backward(func() *nnsight.Node { return g.ReduceAllSum(lg.Node()) })
	})
	must(t, err)
	gd, gs := f32(t, res, "hs_grad")
	_, hsShape := f32(t, res, "hs")
	if fmt.Sprint(gs) != fmt.Sprint(hsShape) || allZero(gd) {
		t.Errorf("gradient shape %v (value shape %v), all zero: %v", gs, hsShape, allZero(gd))
	}
}

// tests/test_lm.py::TestGradients::test_external_tensors
// A Linear and a bias made outside the model act on an activation; the result is checked
// against the same function computed here.
func TestLM_Gradients_ExternalTensors(t *testing.T) {
	m := lm(t)
	e := tinyConfig().NEmbd
	w := make([]float32, e*e)
	bias := make([]float32, e)
	for i := range w {
		w[i] = float32(math.Sin(float64(i))) * 0.3
	}
	for i := range bias {
		bias[i] = float32(math.Cos(float64(i))) * 0.1
	}
	res, err := m.Trace("fish", func(tr *nnsight.Tracer) {
		x := tr.Module("transformer.h.0.mlp").Output()
		x.Save("x")
		tr.Compute("z", func() *nnsight.Node {
			W := tr.Input(tensors.FromFlatDataAndDimensions(w, e, e))
			B := tr.Input(tensors.FromFlatDataAndDimensions(bias, e))
			y := g.Sub(g.Einsum("bsi,io->bso", x.Node(), W), g.BroadcastToDims(g.Reshape(B, 1, 1, e), x.Node().Shape().Dimensions...))
			return g.Max(y, g.ZerosLike(y))
		})
	})
	must(t, err)
	x, _ := f32(t, res, "x")
	z, _ := f32(t, res, "z")
	want := make([]float32, len(x))
	for r := 0; r < len(x)/e; r++ {
		for o := 0; o < e; o++ {
			var s float64
			for i := 0; i < e; i++ {
				s += float64(x[r*e+i]) * float64(w[i*e+o])
			}
			want[r*e+o] = float32(math.Max(s-float64(bias[o]), 0))
		}
	}
	if !close(z, want, 1e-5) {
		t.Errorf("relu(lin(x) - bias) differs from the reference by %g", nnsight.MaxAbsDiff(z, want))
	}
}

// complexModule is the peer's ComplexModule: a module with one WrapperModule child "one".
type complexModule struct{}

func (complexModule) TypeName() string { return "ComplexModule" }
func (complexModule) Children() []module.Child {
	return []module.Child{{Name: "one", Module: module.Identity{}}}
}
func (complexModule) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	return []*module.Node{c.Call1("one", in[0])}
}

// attachEdit wraps h.0's output with the attachment, as the peer's
// `l0.output[:] = l0.attachment(acts, hook=True)` inside model.edit().
func attachEdit(t *testing.T, m *nnsight.Model) *edit.Edit {
	return edit.New("transformer.h.0", outputNode(t, m, "transformer.h.0"), "attachment", complexModule{})
}

// tests/test_lm.py::TestEditing::test_edit_with_attachment
func TestLM_Editing_EditWithAttachment(t *testing.T) {
	orig := lm(t)
	res1, err := orig.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0").Output().Save("original") // a read before the set (nnsight's clone)
		tr.Module("transformer.h.0").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.MulScalar(x, 0) })
	})
	must(t, err)
	edited := newLM()
	must(t, edited.Load())
	must(t, edited.LoadEdits(attachEdit(t, edited)))
	res2, err := edited.Trace(msgPrompt, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.attachment.one").Output().Save("one")
		tr.Module("transformer.h.0.attachment").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.MulScalar(x, 0) })
	})
	must(t, err)
	a, _ := f32(t, res1, "original")
	b, _ := f32(t, res2, "one")
	// An edited module runs without fused kernels, so values agree to the last bits only.
	if nnsight.MaxAbsDiff(a, b) > 1e-6 {
		t.Errorf("the attachment's child does not see h.0's output (max diff %g, %d vs %d values)", nnsight.MaxAbsDiff(a, b), len(a), len(b))
	}
	l1, _ := logits(t, res1)
	l2, _ := logits(t, res2)
	if !equal(l1, l2) {
		t.Errorf("zeroing the attachment's output differs from zeroing h.0's output by %g", nnsight.MaxAbsDiff(l1, l2))
	}
}

// zeroAt is an edit module that zeroes position pos of a [batch, seq, hidden] value (the
// peer's `h[1].output[:, pos] = 0` inside model.edit()).
func zeroAt(pos int) module.Module {
	return nnsight.Fn1(fmt.Sprintf("zero_pos%d", pos), func(x *nnsight.Node) *nnsight.Node {
		dims := x.Shape().Dimensions
		parts := []*nnsight.Node{}
		if pos > 0 {
			parts = append(parts, g.Slice(x, g.AxisRange(), g.AxisRange(0, pos)))
		}
		parts = append(parts, g.ZerosLike(g.Slice(x, g.AxisRange(), g.AxisRange(pos, pos+1))))
		if pos+1 < dims[1] {
			parts = append(parts, g.Slice(x, g.AxisRange(), g.AxisRange(pos+1, dims[1])))
		}
		return g.Concatenate(parts, 1)
	})
}

func position(x []float32, shape []int, pos int) []float32 {
	var out []float32
	s, d := shape[1], shape[2]
	for b := 0; b < shape[0]; b++ {
		out = append(out, x[(b*s+pos)*d:(b*s+pos+1)*d]...)
	}
	return out
}

// tests/test_lm.py::TestEditing::test_non_inplace_editing
// nnsight's edit() returns an edited copy; in gonnsight edits load into a model, so the copy
// is a second model (same weights) with the first model's edit and its own.
func TestLM_Editing_NonInplaceEditing(t *testing.T) {
	a, b := newLM(), newLM()
	must(t, a.Load())
	must(t, b.Load())
	node := outputNode(t, a, "transformer.h.1")
	e0 := edit.New("transformer.h.1", node, "zero_pos0", zeroAt(0))
	must(t, a.LoadEdits(e0))
	must(t, b.LoadEdits(e0, edit.New("transformer.h.1", node, "zero_pos1", zeroAt(1))))
	read := func(m *nnsight.Model) ([]float32, []int) {
		res, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { tr.Module("transformer.h.1").Output().Save("l1") })
		must(t, err)
		return f32(t, res, "l1")
	}
	x, s := read(a)
	if !allZero(position(x, s, 0)) || !noneZero(position(x, s, 1)) {
		t.Error("in-place edit: want position 0 zero and position 1 untouched")
	}
	y, s := read(b)
	if !allZero(position(y, s, 0)) || !allZero(position(y, s, 1)) {
		t.Error("edited copy: want positions 0 and 1 zero")
	}
}

// tests/test_lm.py::TestEditing::test_clear_edits
func TestLM_Editing_ClearEdits(t *testing.T) {
	m := newLM()
	must(t, m.Load())
	must(t, m.LoadEdits(edit.New("transformer.h.1", outputNode(t, m, "transformer.h.1"), "zero",
		nnsight.Fn1("zero", func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) }))))
	read := func() []float32 {
		res, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { tr.Module("transformer.h.1").Output().Save("l1") })
		must(t, err)
		d, _ := f32(t, res, "l1")
		return d
	}
	if !allZero(read()) {
		t.Error("with the edit loaded, h.1's output is not all zero")
	}
	must(t, m.ClearEdits())
	if !noneZero(read()) {
		t.Error("after ClearEdits, h.1's output still has zeros")
	}
}

// tests/test_lm.py::TestEditing::test_batched_editing
func TestLM_Editing_BatchedEditing(t *testing.T) {
	m := newLM()
	must(t, m.Load())
	must(t, m.LoadEdits(attachEdit(t, m)))
	res, err := m.Trace([]string{"a", "b"}, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.attachment").Output().Save("edited")
	})
	must(t, err)
	if _, s := f32(t, res, "edited"); s[0] != 2 {
		t.Errorf("the attachment's output has batch %d, want 2", s[0])
	}
}

// tests/test_lm.py::TestConditionals::test_conditional_intervention
// A Python `if` on a traced value becomes a graph select: the condition is computed in the
// graph and picks the new value or the old one.
func TestLM_Conditionals_ConditionalIntervention(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("Hello World", func(tr *nnsight.Tracer) {
		h5 := tr.Module("transformer.h.5").Output()
		tr.Module(last).Output().Set(func(x *nnsight.Node) *nnsight.Node {
			cond := g.LogicalAll(g.LessThan(h5.Node(), g.Scalar(x.Graph(), x.DType(), 100000)))
			return g.Where(g.BroadcastToDims(cond, x.Shape().Dimensions...), g.ZerosLike(x), x)
		})
		tr.Module(last).Output().Save("out")
	})
	must(t, err)
	if out, _ := f32(t, res, "out"); !allZero(out) {
		t.Error("the condition holds but the output was not zeroed")
	}
}

// tests/test_lm.py::TestInputSetting::test_input_setting
func TestLM_InputSetting_InputSetting(t *testing.T) {
	m := lm(t)
	res1, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { tr.Module("transformer.h.6").Input().Save("hs") })
	must(t, err)
	hs := res1.Get("hs")
	res2, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { tr.Module("transformer.h.6").Input().Set(hs) })
	must(t, err)
	a, s := logits(t, res1)
	b, _ := logits(t, res2)
	if argmaxRows(lastPos(a, s), s[2])[0] != argmaxRows(lastPos(b, s), s[2])[0] {
		t.Error("setting h.6's input to its own value changed the prediction")
	}
	if !close(a, b, 1e-5) {
		t.Errorf("setting h.6's input to its own value changed the logits by %g", nnsight.MaxAbsDiff(a, b))
	}
}

// tests/test_lm.py::TestInvokerBatching::test_invoker_input_ids
// invoker.inputs: the batch a trace ran on is in Result.Batch (ids, rows of each invoke).
func TestLM_InvokerBatching_InvokerInputIds(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke("Hello", func(iv *nnsight.Tracer) { iv.Logits().Save("l0") })
		tr.Invoke("Hello2", nil)
	})
	must(t, err)
	b := res.Batch
	if len(b.Rows) != 2 || b.Rows[0] != [2]int{0, 1} {
		t.Fatalf("invoke rows %v", b.Rows)
	}
	want := tokens(t, m, "Hello")
	row := b.IDs[0]
	if got := row[len(row)-len(want):]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("invoke 0's input ids %v, want %v (left-padded)", row, want)
	}
}

// tests/test_lm.py::TestInvokerBatching::test_token_ids_batching
func TestLM_InvokerBatching_TokenIdsBatching(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(tokens(t, m, etPrompt), func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("logits") })
		tr.Invoke(tokens(t, m, msgPrompt), func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("logits_2") })
	})
	must(t, err)
	_, a := f32(t, res, "logits")
	_, b := f32(t, res, "logits_2")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("shapes %v and %v", a, b)
	}
}

// tests/test_lm.py::TestScan::test_basic_scan
// Scan reports every module output's shape; attn's input is ln_1's output.
func TestLM_Scan_BasicScan(t *testing.T) {
	m := lm(t)
	s, err := m.Scan(msgPrompt, nil)
	must(t, err)
	n := len(tokens(t, m, msgPrompt))
	want := fmt.Sprint([]int{1, n, tinyConfig().NEmbd})
	for _, p := range []string{"transformer.h.0.ln_1", "transformer.h.0.attn"} {
		if got := fmt.Sprint(s.Shapes[p].Dims); got != want {
			t.Errorf("%s: shape %s, want %s", p, got, want)
		}
	}
}

// tests/test_lm.py::TestScan::test_scan_undispatched
// nnsight scans on meta tensors without loading weights; gonnsight's Scan builds the graph
// only (nothing runs) but loads the model it is declared from, as any first use does.
func TestLM_Scan_ScanUndispatched(t *testing.T) {
	m := newLM()
	_, err := m.Scan(msgPrompt, func(tr *nnsight.Tracer) {})
	must(t, err)
}

// tests/test_lm.py::TestOrder::test_out_of_order_error
// nnsight runs the trace function alongside the forward, so asking for h[1] after h[2] is an
// error. gonnsight registers everything before the forward: reading in any order is fine,
// and what cannot work — a value used before the model computes it — is an error.
func TestLM_Order_OutOfOrderError(t *testing.T) {
	m := lm(t)
	_, err := m.Trace("_", func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.2").Output().Save("out")
		tr.Module("transformer.h.1").Input().Save("out_2")
	})
	must(t, err)
	_, err = m.Trace("_", func(tr *nnsight.Tracer) {
		h2 := tr.Module("transformer.h.2").Output()
		tr.Module("transformer.h.1").Input().Set(h2)
	})
	if err == nil || !strings.Contains(err.Error(), "transformer.h.2") {
		t.Errorf("setting h.1's input from h.2's output: want an error naming h.2, got %v", err)
	}
}

// tests/test_lm.py::TestOrder::test_out_of_order_skip_2
func TestLM_Order_OutOfOrderSkip2(t *testing.T) {
	m := lm(t)
	_, err := m.Trace("_", func(tr *nnsight.Tracer) {
		inp := tr.Module("transformer.h.0").Output()
		tr.Module("transformer.h.1").Skip(inp)
		tr.Module("transformer.h.0").Skip(inp)
	})
	if err == nil || !strings.Contains(err.Error(), "transformer.h.0") {
		t.Errorf("skipping h.0 with its own output: want an error naming h.0, got %v", err)
	}
}

// nnsight's .source reaches the operations inside a module's forward. gonnsight's analog is
// the labelled values of a forward (attn's query, key, value, attn_weights, attn_output) —
// and, for any other node, an edit that wraps it (edit.New).

// tests/test_lm.py::TestSource::test_source_output
// split_1's output is the (query, key, value) tuple: here the three labelled values, which
// together are c_attn's output split in three and laid out per head.
func TestLM_Source_SourceOutput(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("_", func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.attn.c_attn").Output().Save("qkv")
		for _, l := range []string{"query", "key", "value"} {
			tr.Module("transformer.h.0.attn." + l).Output().Save(l)
		}
	})
	must(t, err)
	qkv, s := f32(t, res, "qkv") // [1, seq, 3*embd]
	cfg := tinyConfig()
	hd := cfg.NEmbd / cfg.NHead
	for i, l := range []string{"query", "key", "value"} {
		x, xs := f32(t, res, l) // [1, seq, embd]: the seed's 3-D split output, before the head split
		if fmt.Sprint(xs) != fmt.Sprint([]int{1, s[1], cfg.NEmbd}) {
			t.Fatalf("%s has shape %v", l, xs)
		}
		for h := 0; h < cfg.NHead; h++ {
			for p := 0; p < s[1]; p++ {
				for d := 0; d < hd; d++ {
					if x[p*cfg.NEmbd+h*hd+d] != qkv[p*s[2]+i*cfg.NEmbd+h*hd+d] {
						t.Fatalf("%s[head %d, pos %d, %d] is not c_attn's output split", l, h, p, d)
					}
				}
			}
		}
	}
}

// tests/test_lm.py::TestSource::test_source_inputs
// attention_interface_0's inputs are query, key and value: the attention output is
// softmax weights times value, head by head.
func TestLM_Source_SourceInputs(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("The quick brown fox", func(tr *nnsight.Tracer) {
		for _, l := range []string{"value", "attn_weights", "attn_output"} {
			tr.Module("transformer.h.0.attn." + l).Output().Save(l)
		}
	})
	must(t, err)
	v, vs := f32(t, res, "value")        // [1, seq, h*hd]
	w, ws := f32(t, res, "attn_weights") // [1, h, seq, seq]
	o, _ := f32(t, res, "attn_output")   // [1, seq, h*hd]
	nh, seq := ws[1], ws[2]
	hd := vs[2] / nh
	for h := 0; h < nh; h++ {
		for q := 0; q < seq; q++ {
			for d := 0; d < hd; d++ {
				var s float64
				for k := 0; k < seq; k++ {
					s += float64(w[(h*seq+q)*seq+k]) * float64(v[k*nh*hd+h*hd+d])
				}
				if got := o[q*nh*hd+h*hd+d]; math.Abs(float64(got)-s) > 1e-5 {
					t.Fatalf("attn_output[%d, head %d, %d] = %g, weights·value = %g", q, h, d, got, s)
				}
			}
		}
	}
}

// tests/test_lm.py::TestSource::test_source_safe_intervention
func TestLM_Source_SourceSafeIntervention(t *testing.T) {
	m := lm(t)
	before, err := m.Trace(msgPrompt, nil)
	must(t, err)
	res, err := m.Trace("_", func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.attn.c_attn").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
		tr.Module("transformer.h.0.attn.query").Output().Save("out")
	})
	must(t, err)
	if out, _ := f32(t, res, "out"); !allZero(out) {
		t.Error("query is not zero after c_attn's output was zeroed")
	}
	after, err := m.Trace(msgPrompt, nil)
	must(t, err)
	a, _ := logits(t, before)
	b, _ := logits(t, after)
	if !equal(a, b) {
		t.Error("a trace's intervention changed a later plain run")
	}
}

// tests/test_lm.py::TestSource::test_multiple_source
func TestLM_Source_MultipleSource(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("_", func(tr *nnsight.Tracer) {
		for _, h := range []string{"0", "1"} {
			tr.Module("transformer.h." + h + ".attn.query").Output().Save("split_" + h)
			tr.Module("transformer.h." + h + ".attn.attn_output").Output().Save("attention_interface_" + h)
		}
	})
	must(t, err)
	a, _ := f32(t, res, "split_0")
	b, _ := f32(t, res, "split_1")
	if equal(a, b) {
		t.Error("layers 0 and 1 gave the same query")
	}
	for _, n := range []string{"attention_interface_0", "attention_interface_1"} {
		f32(t, res, n)
	}
}

// tests/test_lm.py::TestSource::test_source_patching
// h[1]'s split output becomes (zeros, h[0]'s key, h[0]'s value).
func TestLM_Source_SourcePatching(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("_", func(tr *nnsight.Tracer) {
		k0 := tr.Module("transformer.h.0.attn.key").Output()
		v0 := tr.Module("transformer.h.0.attn.value").Output()
		k0.Save("k0")
		tr.Module("transformer.h.1.attn.query").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
		tr.Module("transformer.h.1.attn.key").Output().Set(k0)
		tr.Module("transformer.h.1.attn.value").Output().Set(v0)
		tr.Module("transformer.h.1.attn.query").Output().Save("q1")
		tr.Module("transformer.h.1.attn.key").Output().Save("k1")
	})
	must(t, err)
	if q, _ := f32(t, res, "q1"); !allZero(q) {
		t.Error("h.1's query is not zero")
	}
	k0, _ := f32(t, res, "k0")
	k1, _ := f32(t, res, "k1")
	if !equal(k0, k1) {
		t.Error("h.1's key is not h.0's")
	}
}

// tests/test_lm.py::TestSource::test_recursive_source
// sdpa inside attention_interface: gonnsight's labels are flat within the module; the
// attention probabilities are attn_weights: causal and summing to 1 over the keys.
func TestLM_Source_RecursiveSource(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("_ _ _ _", func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.attn.attn_weights").Output().Save("w")
	})
	must(t, err)
	w, s := f32(t, res, "w")
	seq := s[3]
	for h := 0; h < s[1]; h++ {
		for q := 0; q < seq; q++ {
			var sum float64
			for k := 0; k < seq; k++ {
				x := w[(h*seq+q)*seq+k]
				if k > q && x != 0 {
					t.Fatalf("head %d: query %d attends to the later key %d", h, q, k)
				}
				sum += float64(x)
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Fatalf("head %d, query %d: weights sum to %g", h, q, sum)
			}
		}
	}
}

// tests/test_lm.py::TestSource::test_source_imported_function
// The operations of a forward are listed by its captured graph (print_gm); labelled ones
// are traceable by name.
func TestLM_Source_SourceImportedFunction(t *testing.T) {
	m := lm(t)
	gr, err := m.Graph("transformer.h[0].attn")
	must(t, err)
	if gr.Find("query") == nil {
		t.Fatalf("attn's graph has no node query; nodes: %v", gr.Names())
	}
	res, err := m.Trace("_", func(tr *nnsight.Tracer) { tr.Module("transformer.h[0].attn.query").Output().Save("out") })
	must(t, err)
	f32(t, res, "out")
}

// tests/test_lm.py::TestSource::test_operation_envoy_update
// A path named before the model is loaded works once it loads.
func TestLM_Source_OperationEnvoyUpdate(t *testing.T) {
	m := newLM()
	fn := "transformer.h.0.attn.query"
	res, err := m.Trace(msgPrompt, func(tr *nnsight.Tracer) { tr.Module(fn).Output().Save("out") })
	must(t, err)
	f32(t, res, "out")
}

// tests/test_lm.py::TestSource::test_source_output_with_barrier
// The peer patches head 0 of the last position of the attention output ([b, seq, heads,
// hd]); gonnsight's attn_output is [b, seq, heads*hd], head 0 being its first hd columns.
// Invokes run in one batched forward, so no barrier is needed.
func TestLM_Source_SourceOutputWithBarrier(t *testing.T) {
	m := lm(t)
	cfg := tinyConfig()
	hd := cfg.NEmbd / cfg.NHead
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		var src *nnsight.Proxy
		tr.Invoke(etPrompt, func(iv *nnsight.Tracer) {
			src = iv.Module("transformer.h.0.attn.attn_output").Output().At(1, -1, 0).At(2, 0, hd)
			src.Save("attn_out")
		})
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			iv.Module("transformer.h.0.attn.attn_output").Output().At(1, -1, 0).At(2, 0, hd).Set(src)
			iv.Module("transformer.h.0.attn.attn_output").Output().At(1, -1, 0).At(2, 0, hd).Save("attn_out_2")
		})
	})
	must(t, err)
	a, _ := f32(t, res, "attn_out")
	b, _ := f32(t, res, "attn_out_2")
	if !equal(a, b) {
		t.Errorf("patched head differs: %v vs %v", a, b)
	}
}

// tests/test_lm.py::TestSkip::test_basic_skip
func TestLM_Skip_BasicSkip(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("_", func(tr *nnsight.Tracer) {
		inp := tr.Module("transformer.h.0").Output()
		inp.Save("inp")
		tr.Module("transformer.h.1").Skip(inp)
		tr.Module("transformer.h.1").Output().Save("out")
	})
	must(t, err)
	a, _ := f32(t, res, "inp")
	b, _ := f32(t, res, "out")
	if !equal(a, b) {
		t.Error("the skipped module's output is not the skip value")
	}
}

// tests/test_lm.py::TestSkip::test_skip_with_input_modification
func TestLM_Skip_SkipWithInputModification(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("_", func(tr *nnsight.Tracer) {
		inp := tr.Module("transformer.h.0").Output()
		inp.Save("inp")
		tr.Module("transformer.h.1").Input().Set(func(x *nnsight.Node) *nnsight.Node { return g.ZerosLike(x) })
		tr.Module("transformer.h.1").Skip(inp)
		tr.Module("transformer.h.1").Output().Save("out")
	})
	must(t, err)
	a, _ := f32(t, res, "inp")
	b, _ := f32(t, res, "out")
	if allZero(b) || !equal(a, b) {
		t.Error("skip must override the input modification: the output is the skip value")
	}
}

// tests/test_lm.py::TestSkip::test_multiple_skip
func TestLM_Skip_MultipleSkip(t *testing.T) {
	m := lm(t)
	res, err := m.Trace("_", func(tr *nnsight.Tracer) {
		inp := tr.Module("transformer.h.0").Output()
		tr.Module("transformer.h.1").Skip(inp)
		inp2 := tr.Module("transformer.h.1").Output()
		tr.Module("transformer.h.2").Skip(inp2)
		inp3 := tr.Module("transformer.h.2").Output()
		inp3.Save("inp_3")
		tr.Module("transformer.h.3").Skip(inp3)
		tr.Module("transformer.h.3").Output().Save("out")
		tr.Module("transformer.h.0").Output().Save("h0")
	})
	must(t, err)
	a, _ := f32(t, res, "inp_3")
	b, _ := f32(t, res, "out")
	h0, _ := f32(t, res, "h0")
	if !equal(a, b) || !equal(b, h0) {
		t.Error("three chained skips must pass h.0's output through to h.3")
	}
}

// tests/test_lm.py::TestSkip::test_skip_inner_module_error
func TestLM_Skip_SkipInnerModuleError(t *testing.T) {
	m := lm(t)
	_, err := m.Trace("Hello World", func(tr *nnsight.Tracer) {
		inp := tr.Module("transformer.h.0").Output()
		tr.Module("transformer.h.1").Skip(inp)
		tr.Module("transformer.h.1.attn").Output().Save("hs")
	})
	if err == nil || !strings.Contains(err.Error(), "transformer.h.1.attn") {
		t.Errorf("reading inside a skipped module: want an error naming it, got %v", err)
	}
}

// tests/test_lm.py::TestSkip::test_skip_batched
func TestLM_Skip_SkipBatched(t *testing.T) {
	m := lm(t)
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(etPrompt, func(iv *nnsight.Tracer) {
			inp := iv.Module("transformer.h.0").Output()
			inp.Save("inp")
			iv.Module("transformer.h.1").Skip(inp)
			iv.Module("transformer.h.1").Output().Save("out")
		})
		tr.Invoke(msgPrompt, func(iv *nnsight.Tracer) {
			inp := iv.Module("transformer.h.0").Output()
			inp.Save("inp_2")
			iv.Module("transformer.h.1").Skip(inp)
			iv.Module("transformer.h.1").Output().Save("out_2")
		})
	})
	must(t, err)
	inp, _ := f32(t, res, "inp")
	out, _ := f32(t, res, "out")
	inp2, _ := f32(t, res, "inp_2")
	out2, _ := f32(t, res, "out_2")
	if equal(out, out2) {
		t.Error("the two invokes' outputs are equal")
	}
	if !equal(out, inp) {
		t.Error("invoke 0: h.1's output is not its skip value")
	}
	if !equal(out2, inp2) {
		t.Error("invoke 1: h.1's output is not its skip value")
	}
}

// tests/test_lm.py::TestMiscellaneous::test_undispatched_extra_module
func TestLM_Miscellaneous_UndispatchedExtraModule(t *testing.T) {
	m := newLM() // declared, not loaded: Generate loads it
	gen, err := m.Generate(msgPrompt, 1, nil)
	must(t, err)
	if len(gen.NewTokens[0]) != 1 {
		t.Errorf("generated %v", gen.NewTokens)
	}
}
