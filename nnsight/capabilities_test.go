package nnsight_test

// Tests for what nnsight users expect and gonnsight lacked (issue 11, "missing capabilities").

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/nnsight"
)

func zeroOut(x *g.Node) *g.Node { return g.ZerosLike(x) }

func TestPromptlessInvokeSeesTheWholeBatch(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	want, _ := fx.Tensor(t, "p0/ablate/transformer.h.0.mlp/logits")
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(p0, nil)
		tr.Invoke(p0, nil)
		tr.Invoke(nil, func(all *nnsight.Tracer) {
			all.Module("transformer.h.0.mlp").Output().Set(zeroOut)
			all.Module("transformer.h.0.mlp").Output().Save("mlp")
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	d, s := logitsOf(t, res)
	if s[0] != 2 {
		t.Fatalf("batch of %d rows, want 2 (a prompt-less invoke adds none)", s[0])
	}
	row := len(d) / 2
	fx.CompareSlice(t, "row 0", d[:row], want, tol)
	fx.CompareSlice(t, "row 1", d[row:], want, tol)
	if _, shape, _ := res.Float32("mlp"); shape[0] != 2 {
		t.Errorf("prompt-less invoke saved shape %v, want the whole batch", shape)
	}
	if _, err := m.Trace(nil, func(tr *nnsight.Tracer) { tr.Invoke(nil, nil) }); err == nil {
		t.Error("a trace with only a prompt-less invoke has nothing to run: must be an error")
	}
}

func TestGenerateWithInvokes(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0, c := fx.Ints(t, "p0"), fx.Ints(t, "c")
	n := fx.Int(t, "n_new")
	ablated := fx.Ints(t, "generate", "ablate_every_step", "tokens")
	for _, opts := range [][]nnsight.GenOption{nil, {nnsight.NoCache()}} {
		alone, err := m.Generate(c, n, nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		gen, err := m.Generate(nil, n, func(tr *nnsight.Tracer) {
			tr.Invoke(p0, func(iv *nnsight.Tracer) { iv.Module("transformer.h.0.mlp").Output().Set(zeroOut) })
			tr.Invoke(c, nil)
		}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gen.Tokens[0], ablated) {
			t.Errorf("invoke 0 (ablated every step), %d options: %v, reference %v", len(opts), gen.Tokens[0], ablated)
		}
		if !slices.Equal(gen.Tokens[1], alone.Tokens[0]) {
			t.Errorf("invoke 1 (no intervention), %d options: %v, alone %v", len(opts), gen.Tokens[1], alone.Tokens[0])
		}
	}
}

func TestIterStepRanges(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	n := fx.Int(t, "n_new")
	ablate := func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.mlp").Output().Set(zeroOut) }
	gen, err := m.Generate(p0, n, func(tr *nnsight.Tracer) { tr.Iter(2, 3, ablate) }, nnsight.NoCache())
	if err != nil {
		t.Fatal(err)
	}
	if want := fx.Ints(t, "generate", "ablate_step2", "tokens"); !slices.Equal(gen.Tokens[0], want) {
		t.Errorf("Iter(2, 3): %v, reference %v", gen.Tokens[0], want)
	}
	gen, err = m.Generate(p0, n, func(tr *nnsight.Tracer) { tr.All(ablate) })
	if err != nil {
		t.Fatal(err)
	}
	if want := fx.Ints(t, "generate", "ablate_every_step", "tokens"); !slices.Equal(gen.Tokens[0], want) {
		t.Errorf("All: %v, reference %v", gen.Tokens[0], want)
	}
	var steps []int
	_, err = m.Generate(p0, 4, func(tr *nnsight.Tracer) {
		tr.Iter(1, nnsight.AllSteps, func(tr *nnsight.Tracer) { steps = append(steps, tr.Step()) })
	}, nnsight.IgnoreEOS())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(steps) != "[1 2 3]" {
		t.Errorf("Iter(1, AllSteps) ran at steps %v, want [1 2 3]", steps)
	}
	for _, r := range [][2]int{{3, 5}, {5, 6}, {2, 2}, {-1, 2}} {
		_, err := m.Generate(p0, 3, func(tr *nnsight.Tracer) { tr.Iter(r[0], r[1], ablate) })
		if err == nil {
			t.Errorf("Iter(%d, %d) with 3 new tokens must be an error", r[0], r[1])
		}
	}
	if _, err := m.Trace(p0, func(tr *nnsight.Tracer) { tr.Iter(1, 2, ablate) }); err == nil ||
		!strings.Contains(err.Error(), "steps 0 to 0") {
		t.Errorf("Iter past a trace's only step: %v", err)
	}
}

func TestStreamer(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	var streamed []int
	gen, err := m.Generate(fx.Ints(t, "p0"), 4, nil, nnsight.IgnoreEOS(),
		nnsight.Streamer(func(step int, toks []int) {
			if step != len(streamed) {
				t.Errorf("step %d streamed after %d tokens", step, len(streamed))
			}
			streamed = append(streamed, toks[0])
		}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(streamed, gen.NewTokens[0]) {
		t.Errorf("streamed %v, generated %v", streamed, gen.NewTokens[0])
	}
}

func TestCacheInsideTrace(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	var all, mlp *nnsight.Cache
	res, err := m.Trace(p0, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().Set(zeroOut)
		all = tr.Cache()
		mlp = tr.Cache("transformer.h.*.mlp")
	})
	if err != nil {
		t.Fatal(err)
	}
	// Values after the trace's interventions.
	d, _, err := mlp.Float32("transformer.h.0.mlp")
	if err != nil {
		t.Fatal(err)
	}
	if nnsight.MaxAbs(d) != 0 {
		t.Errorf("cached h.0.mlp after a zeroing Set: max |x| = %g, want 0", nnsight.MaxAbs(d))
	}
	in, _, err := mlp.Float32("transformer.h.0.mlp.input")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fx.Tensor(t, "p0/transformer.h.0.ln_2")
	fx.CompareSlice(t, "cached input of h.0.mlp", in, want, tol)
	if mlp.Get("transformer.h.0.attn") != nil {
		t.Error("a cache for transformer.h.*.mlp holds transformer.h.0.attn")
	}
	// Later values see the intervention: h.1's output is the ablated run's.
	h1, _, _ := all.Float32("transformer.h.1")
	logits, _ := logitsOf(t, res)
	wantLogits, _ := fx.Tensor(t, "p0/ablate/transformer.h.0.mlp/logits")
	fx.CompareSlice(t, "logits", logits, wantLogits, tol)
	if all.Get("transformer.h.1.attn.attn_weights") == nil || len(h1) == 0 {
		t.Errorf("the unfiltered cache lacks labelled values or blocks; has %d keys", len(all.Paths))
	}

	// An invoke's cache holds only its rows.
	var second *nnsight.Cache
	_, err = m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(fx.Ints(t, "c"), nil)
		tr.Invoke(p0, func(iv *nnsight.Tracer) { second = iv.Cache("transformer.h.0") })
	})
	if err != nil {
		t.Fatal(err)
	}
	d, s, _ := second.Float32("transformer.h.0")
	if s[0] != 1 {
		t.Fatalf("invoke cache shape %v, want one row", s)
	}
	if len(fx.Ints(t, "c")) == len(p0) { // same length: no padding, so the row equals the run alone
		want, _ := fx.Tensor(t, "p0/transformer.h.0")
		fx.CompareSlice(t, "invoke 1's cached h.0", d, want, tol)
	}

	// In Generate, one cache collects every step.
	var gc *nnsight.Cache
	gen, err := m.Generate(p0, 3, func(tr *nnsight.Tracer) { gc = tr.Cache("lm_head") }, nnsight.IgnoreEOS())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(gc.List("lm_head")); n != gen.Steps {
		t.Errorf("generation cache has %d steps of lm_head, the generation ran %d", n, gen.Steps)
	}
}

func TestSetWithAnotherShape(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	// Dropping the first position of the embeddings: every later module accepts the shorter
	// sequence, so the logits have one position fewer.
	dropFirst := func(x *g.Node) *g.Node { return g.Slice(x, g.AxisRange(), g.AxisRange(1)) }
	res, err := m.Trace(p0, func(tr *nnsight.Tracer) { tr.Module("transformer.drop").Output().Set(dropFirst) })
	if err != nil {
		t.Fatal(err)
	}
	_, s := logitsOf(t, res)
	if s[1] != len(p0)-1 {
		t.Errorf("logits shape %v after dropping a position, want %d positions", s, len(p0)-1)
	}
	scan, err := m.Scan(p0, func(tr *nnsight.Tracer) { tr.Module("transformer.drop").Output().Set(dropFirst) })
	if err != nil {
		t.Fatal(err)
	}
	if got := scan.Shapes["transformer.h.0.mlp"].Dims[1]; got != len(p0)-1 {
		t.Errorf("Scan shows h.0.mlp with %d positions, want %d", got, len(p0)-1)
	}
	// A shape the next module cannot take: an error naming the Set.
	_, err = m.Trace(p0, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp.c_fc").Output().Set(func(x *g.Node) *g.Node {
			return g.Slice(x, g.AxisRange(), g.AxisRange(), g.AxisRange(0, 3))
		})
	})
	if err == nil || !strings.Contains(err.Error(), "Set on transformer.h.0.mlp.c_fc.output changed its shape") {
		t.Errorf("want an error naming the Set that changed the shape, got %v", err)
	}
	// Part of a value (one invoke's rows, an At region) cannot change shape.
	_, err = m.Trace(p0, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().At(1, 0, 1).Set(dropFirst)
	})
	if err == nil {
		t.Error("a Set of another shape on a region must be an error")
	}
}

func TestUserAttentionMask(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	V := m.Config().VocabSize
	run := func(first int, mask bool) []float32 {
		ids := append([]int{first}, p0...)
		mk := make([]bool, len(ids))
		for i := range mk {
			mk[i] = true
		}
		mk[0] = mask
		res, err := m.Trace(nnsight.Tokens{IDs: [][]int{ids}, AttentionMask: [][]bool{mk}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := logitsOf(t, res)
		return d[V:] // positions 1..: the masked token's own row is not compared
	}
	// A masked token is invisible: which token it is does not matter. Unmasked, it does.
	if d := nnsight.MaxAbsDiff(run(1, false), run(2, false)); d > 1e-5 {
		t.Errorf("a masked first token changed the other positions' logits by %g", d)
	}
	if d := nnsight.MaxAbsDiff(run(1, true), run(2, true)); d < 1e-4 {
		t.Errorf("control: an unmasked first token changed nothing (%g)", d)
	}
	_, err := m.Trace(nnsight.Tokens{IDs: [][]int{p0}, AttentionMask: [][]bool{{true}}}, nil)
	if err == nil {
		t.Error("a mask of the wrong length must be an error")
	}
}

func TestIntegerResults(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
		l := tr.Logits()
		tr.Compute("argmax", func() *g.Node { return g.ArgMax(l.Node(), -1) })
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, shape, err := res.Ints("argmax")
	if err != nil {
		t.Fatal(err)
	}
	d, s := logitsOf(t, res)
	V := s[2]
	for p := 0; p < s[1]; p++ {
		row := d[p*V : (p+1)*V]
		best := 0
		for i, x := range row {
			if x > row[best] {
				best = i
			}
		}
		if ids[p] != best {
			t.Errorf("position %d: Ints gives %d, argmax of the logits is %d", p, ids[p], best)
		}
	}
	if len(shape) != 2 {
		t.Errorf("shape %v", shape)
	}
	if _, _, err := res.Ints("logits"); err == nil {
		t.Error("Ints of float logits must be an error")
	}
}
