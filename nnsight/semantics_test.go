package nnsight_test

// Regression tests for traces that gave silent wrong results (issue 11, items 1-5).

import (
	"fmt"
	"slices"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/nnsight"
)

// logitDiff is the reference's gradient target: logit A - logit B at the last position.
func logitDiff(logits *nnsight.Proxy, A, B int) func() *g.Node {
	return func() *g.Node {
		l := logits.Node()
		last := g.Reshape(g.Slice(l, g.AxisElem(0), g.AxisElem(-1), g.AxisRange()), -1)
		return g.Reshape(g.Sub(g.Slice(last, g.AxisElem(A)), g.Slice(last, g.AxisElem(B))))
	}
}

func scaled(x []float32, f float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = v * f
	}
	return out
}

// Item 1: setting a gradient changes only what flows backward, never the forward value.
func TestGradSetChangesOnlyTheGradient(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	A, B := fx.Int(t, "A"), fx.Int(t, "B")
	plain, err := m.Trace(fx.Ints(t, "p0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantLogits, _ := logitsOf(t, plain)
	wantG0, _ := fx.Tensor(t, "p0/grad/transformer.h.0")

	// Every path from h.0's output to the logits goes through h.1's output (the residual
	// stream), so doubling the gradient there doubles it at h.0; zeroing it zeroes it.
	for _, c := range []struct {
		name   string
		set    any
		factor float32
	}{
		{"double", func(gr *g.Node) *g.Node { return g.MulScalar(gr, 2) }, 2},
		{"zero", 0.0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
				logits := tr.Logits()
				h0, h1 := tr.Module("transformer.h.0").Output(), tr.Module("transformer.h.1").Output()
				tr.Backward(logitDiff(logits, A, B), func() {
					h1.Grad().Set(c.set)
					h0.Grad().Save("g_h0")
					h1.Grad().Save("g_h1_after_set")
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := logitsOf(t, res)
			if d := nnsight.MaxAbsDiff(got, wantLogits); d != 0 {
				t.Errorf("setting a gradient changed the forward logits (max diff %g)", d)
			}
			d, s, err := res.Float32("g_h0")
			if err != nil {
				t.Fatal(err)
			}
			fx.CompareSlice(t, fmt.Sprintf("%s: grad at h.0 after grad(h.1) x %g", c.name, c.factor), d, scaled(wantG0, c.factor), tol)
			if len(s) != 3 {
				t.Errorf("grad shape %v", s)
			}
		})
	}
}

// Item 2: several backward passes in one trace are independent (nnsight's multi-backward).
func TestMultiBackwardPasses(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	A, B := fx.Int(t, "A"), fx.Int(t, "B")
	want, _ := fx.Tensor(t, "p0/grad/transformer.h.0")
	res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
		logits := tr.Logits()
		h0 := tr.Module("transformer.h.0").Output()
		diff := logitDiff(logits, A, B)
		tr.Backward(diff, func() { h0.Grad().Save("g1") })
		tr.Backward(func() *g.Node { return g.MulScalar(diff(), 2) }, func() { h0.Grad().Save("g2") })
	})
	if err != nil {
		t.Fatal(err)
	}
	g1, _, err := res.Float32("g1")
	if err != nil {
		t.Fatal(err)
	}
	g2, _, err := res.Float32("g2")
	if err != nil {
		t.Fatal(err)
	}
	fx.CompareSlice(t, "first pass", g1, want, tol)
	fx.CompareSlice(t, "second pass (2 x loss)", g2, scaled(want, 2), tol)
}

// Two body-less Backward calls with Grad() outside any body are ambiguous: rejected.
func TestAmbiguousBackwardIsRejected(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	_, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
		logits := tr.Logits()
		tr.Module("transformer.h.0").Output().Grad().Save("g")
		tr.Backward(func() *g.Node { return g.ReduceAllSum(logits.Node()) })
		tr.Backward(func() *g.Node { return g.ReduceAllSum(logits.Node()) })
	})
	if err == nil {
		t.Fatal("two body-less Backward calls with a Grad() outside any body must be an error")
	}
}

// Item 3: what an invoke skips stays with that invoke, even when two invokes skip one module.
func TestSkipInTwoInvokes(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0")
	want, _ := fx.Tensor(t, "p0/ablate/transformer.h.0.mlp/logits")
	zero := func(x *g.Node) *g.Node { return g.ZerosLike(x) }
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(ids, func(iv *nnsight.Tracer) { iv.Module("transformer.h.0.mlp").Skip(zero) })
		tr.Invoke(ids, func(iv *nnsight.Tracer) { iv.Module("transformer.h.0.mlp").Skip(zero) })
	})
	if err != nil {
		t.Fatal(err)
	}
	d, s := logitsOf(t, res)
	row := len(d) / s[0]
	for i := 0; i < 2; i++ {
		fx.CompareSlice(t, fmt.Sprintf("invoke %d", i), d[i*row:(i+1)*row], want, tol)
	}

	// One invoke skipping, the other not: only the first row is ablated.
	plain, _ := m.Trace(ids, nil)
	pd, _ := logitsOf(t, plain)
	res, err = m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(ids, func(iv *nnsight.Tracer) { iv.Module("transformer.h.0.mlp").Skip(zero) })
		tr.Invoke(ids, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _ = logitsOf(t, res)
	fx.CompareSlice(t, "skipping invoke", d[:row], want, tol)
	fx.CompareSlice(t, "other invoke", d[row:], pd, tol)
}

// Item 4: skipping a block during generation with the KV cache works when it is skipped at
// every step, and is a clear error when a later step needs the keys the skip never wrote.
func TestSkipDuringGenerateWithCache(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	for _, path := range []string{"transformer.h.1", "transformer.h.1.attn"} {
		skip := func(tr *nnsight.Tracer) {
			tr.Module(path).Skip(func(x *g.Node) *g.Node { return x })
		}
		if path == "transformer.h.1.attn" {
			skip = func(tr *nnsight.Tracer) {
				tr.Module(path).Skip(func(x *g.Node) *g.Node { return g.ZerosLike(x) })
			}
		}
		cached, err := m.Generate(p0, 4, skip, nnsight.IgnoreEOS())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		full, err := m.Generate(p0, 4, skip, nnsight.IgnoreEOS(), nnsight.NoCache())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !slices.Equal(cached.Tokens[0], full.Tokens[0]) {
			t.Errorf("%s skipped: KV cache tokens %v, no-cache tokens %v", path, cached.Tokens[0], full.Tokens[0])
		}
	}
	_, err := m.Generate(p0, 3, func(tr *nnsight.Tracer) {
		if tr.Step() == 0 {
			tr.Module("transformer.h.1").Skip(func(x *g.Node) *g.Node { return x })
		}
	}, nnsight.IgnoreEOS())
	if err == nil {
		t.Fatal("a block skipped at step 0 only leaves its KV cache empty for the prompt: must be an error with the cache")
	}
}

// Item 5: user save names never collide with the model's own outputs.
func TestSaveNamedLogits(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	res, err := m.Trace(p0, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().Save("logits")
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := logitsOf(t, res)
	want, _ := fx.Tensor(t, "p0/lm_head")
	fx.CompareSlice(t, "Logits() with a user value saved as \"logits\"", d, want, tol)
	mlp, _, _ := res.Float32("logits")
	wantMLP, _ := fx.Tensor(t, "p0/transformer.h.0.mlp")
	fx.CompareSlice(t, "Get(\"logits\") is the user's value", mlp, wantMLP, tol)

	plain, err := m.Generate(p0, 3, nil, nnsight.IgnoreEOS())
	if err != nil {
		t.Fatal(err)
	}
	gen, err := m.Generate(p0, 3, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().Save("logits")
	}, nnsight.IgnoreEOS())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plain.Tokens[0], gen.Tokens[0]) {
		t.Errorf("saving a value called \"logits\" changed the generation: %v vs %v", gen.Tokens[0], plain.Tokens[0])
	}
	if n := len(gen.Saved.List("logits")); n != 3 {
		t.Errorf("saved %d steps of the user's \"logits\", want 3", n)
	}
}

// Item 1 in the body-less form: Grad().Set outside a body never touches the forward.
func TestGradSetOutsideBodyKeepsLogits(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	A, B := fx.Int(t, "A"), fx.Int(t, "B")
	want, _ := fx.Tensor(t, "p0/lm_head")
	res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
		logits := tr.Logits()
		tr.Module("transformer.h.1").Output().Grad().Set(0.0)
		tr.Module("transformer.h.0").Output().Grad().Save("g_h0")
		tr.Backward(logitDiff(logits, A, B))
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := logitsOf(t, res)
	fx.CompareSlice(t, "logits with a gradient set to 0", got, want, tol)
	g0, _, _ := res.Float32("g_h0")
	if nnsight.MaxAbs(g0) != 0 {
		t.Errorf("gradient at h.0 is %g, want 0 (the gradient at h.1 was set to 0)", nnsight.MaxAbs(g0))
	}
}

// Gradients at values inside a module an edit rewrites follow the rewritten nodes.
func TestGradInsideAnEditedModule(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	A, B := fx.Int(t, "A"), fx.Int(t, "B")
	if err := m.LoadEdits(edit.New("transformer.h.1.attn", "query", "qw", edit.Identity())); err != nil {
		t.Fatal(err)
	}
	defer m.ClearEdits()
	res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
		logits := tr.Logits()
		w := tr.Module("transformer.h.1.attn.attn_weights").Output()
		tr.Backward(logitDiff(logits, A, B), func() { w.Grad().Save("g_w") })
	})
	if err != nil {
		t.Fatal(err)
	}
	d, s, _ := res.Float32("g_w")
	fx.Compare(t, "p0/grad/transformer.h.1.attn.attn_weights", d, s, tol)
}
