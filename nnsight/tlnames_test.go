package nnsight_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/internal/golden"
	"github.com/gonnsight/gonnsight/nnsight"
)

// maxAbsDiff is max|got-want| over finite entries; -inf entries (hook_attn_scores' masked
// ones) must be -inf in both. It returns +Inf on a shape or an infinity mismatch.
func maxAbsDiff(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsInf(w, 0) || math.IsInf(g, 0) {
			if g != w {
				return math.Inf(1)
			}
			continue
		}
		if math.IsNaN(g) {
			return math.Inf(1)
		}
		d = math.Max(d, math.Abs(g-w))
	}
	return d
}

// tlHooks are every TransformerLens hook name the model answers to (module.AltPaths).
func tlHooks(t *testing.T, m *nnsight.Model) []string {
	hooks := m.HookNames()
	if len(hooks) == 0 {
		t.Fatal("the model lists no TransformerLens hook names")
	}
	return hooks
}

// Every TransformerLens hook name, read in one trace, equals the PyTorch reference's
// TransformerLens-layout forward (tests/reference/gpt2_ref.py tl_forward) within 1e-4.
func TestTransformerLensHooksMatchReference(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			hooks := tlHooks(t, m)
			res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
				for _, h := range hooks {
					tr.Module(h).Output().Save(h)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hooks {
				got, shape, err := res.Float32(h)
				if err != nil {
					t.Fatal(err)
				}
				want, wshape := fx.Tensor(t, "tl/p0/"+h)
				if !slices.Equal(shape, wshape) {
					t.Errorf("%s: shape %v, TransformerLens's layout %v", h, shape, wshape)
					continue
				}
				d := maxAbsDiff(got, want)
				t.Logf("%-32s %v max|diff| %.2g", h, shape, d)
				if d > tol {
					t.Errorf("%s: max|go - reference| = %.3g > %.0e", h, d, tol)
				}
			}
			// The masked scores are -inf, as in TransformerLens, and the rest finite.
			sc, _, _ := res.Float32("blocks.0.attn.hook_attn_scores")
			if !math.IsInf(float64(sc[1]), -1) || math.IsInf(float64(sc[0]), 0) {
				t.Errorf("hook_attn_scores[0,0,0,:2] = %v, want [finite, -inf]", sc[:2])
			}
		})
	}
}

// Zeroing one head of hook_z ablates that head: the logits equal the reference's with that
// head's z zeroed (and differ from the clean logits).
func TestTransformerLensHookZAblatesHead(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			ids := fx.Ints(t, "p0")
			clean, _ := fx.Tensor(t, "p0/lm_head")
			for h := 0; h < m.Config().NHead; h++ {
				res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
					tr.Module("blocks.1.attn.hook_z").Output().At(2, h, h+1).Set(0.0)
				})
				if err != nil {
					t.Fatal(err)
				}
				got, shape, _ := nnsight.Float32(res.Logits())
				key := fmt.Sprintf("tl/p0/ablate/blocks.1.attn.hook_z/%d/logits", h)
				want, wshape := fx.Tensor(t, key)
				if !slices.Equal(shape, wshape) {
					t.Fatalf("%s: shape %v, want %v", key, shape, wshape)
				}
				d := maxAbsDiff(got, want)
				t.Logf("head %d: max|diff| %.2g (vs clean: %.2g)", h, d, maxAbsDiff(got, clean))
				if d > tol {
					t.Errorf("%s: max|go - reference| = %.3g > %.0e", key, d, tol)
				}
				if maxAbsDiff(got, clean) < 1e-3 {
					t.Errorf("head %d: zeroing hook_z did not change the logits", h)
				}
			}
		})
	}
}

// TransformerLens names work in RunWithCache, the trace's Cache, Scan's globs and Stack, and
// a misspelt one is an error that suggests the right one.
func TestTransformerLensNamesEverywhere(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0")
	ref := func(h string) []float32 { d, _ := fx.Tensor(t, "tl/p0/"+h); return d }
	check := func(what string, got, want []float32) {
		t.Helper()
		if d := maxAbsDiff(got, want); d > tol {
			t.Errorf("%s: max|diff| %.3g", what, d)
		}
	}

	// RunWithCache with globs: keys spelled as the patterns spell them.
	c, err := m.RunWithCache(ids, "blocks.*.hook_resid_pre", "blocks.1.attn.hook_*", "hook_embed")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hook_embed", "blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.attn.hook_q",
		"blocks.1.attn.hook_k", "blocks.1.attn.hook_v", "blocks.1.attn.hook_attn_scores", "blocks.1.attn.hook_pattern",
		"blocks.1.attn.hook_z", "blocks.1.attn.hook_result"}
	if !sameSet(c.Paths, want) {
		t.Errorf("RunWithCache paths %v, want %v", c.Paths, want)
	}
	for _, h := range want {
		d, _, err := nnsight.Float32(c.Get(h))
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		check("RunWithCache "+h, d, ref(h))
	}
	// Stack accepts any spelling of a cached value.
	st, dims, err := c.Stack("blocks.0.hook_resid_pre", "transformer.h.1.input")
	if err != nil {
		t.Fatal(err)
	}
	n := len(st) / dims[0]
	check("Stack[0]", st[:n], ref("blocks.0.hook_resid_pre"))
	check("Stack[1]", st[n:], ref("blocks.1.hook_resid_pre"))
	// A plain glob over the blocks does not pick up their inputs.
	c2, err := m.RunWithCache(ids, "transformer.h.**")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c2.Paths {
		if strings.HasSuffix(p, ".input") {
			t.Errorf("transformer.h.** cached an input: %s", p)
		}
	}

	// The trace's Cache, with an intervention before it: hook_resid_pre of block 1 is the
	// block's input, and reading it sees the set value.
	var tc *nnsight.Cache
	_, err = m.Trace(ids, func(tr *nnsight.Tracer) {
		tc = tr.Cache("blocks.*.hook_resid_pre", "blocks.0.mlp.hook_post")
		tr.Module("blocks.0.hook_resid_post").Output().Set(0.0)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := nnsight.Float32(tc.Get("blocks.1.hook_resid_pre"))
	if err != nil {
		t.Fatal(err)
	}
	check("Cache blocks.1.hook_resid_pre after the Set", got, make([]float32, len(got)))
	got, _, _ = nnsight.Float32(tc.Get("blocks.0.hook_resid_pre"))
	check("Cache blocks.0.hook_resid_pre", got, ref("blocks.0.hook_resid_pre"))
	got, _, _ = nnsight.Float32(tc.Get("blocks.0.mlp.hook_post"))
	check("Cache blocks.0.mlp.hook_post", got, ref("blocks.0.mlp.hook_post"))

	// Scan: shapes and axis names of the per-head views; globs with TransformerLens names.
	s, err := m.Scan(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	z := s.Shapes["transformer.h.0.attn.hook_z"]
	if fmt.Sprint(z.Dims, z.Axes) != "[1 7 2 8] [batch pos head d_head]" {
		t.Errorf("Scan hook_z: %v", z)
	}
	if sh, err := s.Shape("blocks.-1.attn.hook_result"); err != nil || fmt.Sprint(sh.Dims, sh.Axes) != "[1 7 2 16] [batch pos head embd]" {
		t.Errorf("Scan.Shape(blocks.-1.attn.hook_result) = %v, %v", sh, err)
	}
	if _, err := s.Shape("blocks.0.attn.hook_zz"); err == nil || !strings.Contains(err.Error(), "blocks.0.attn.hook_z") {
		t.Errorf("Scan.Shape of a misspelt hook: %v", err)
	}
	if got := s.Match("blocks.*.attn.hook_pattern"); fmt.Sprint(got) != "[transformer.h.0.attn.attn_weights transformer.h.1.attn.attn_weights]" {
		t.Errorf("Scan.Match(blocks.*.attn.hook_pattern) = %v", got)
	}

	// A misspelt hook name: the error says what exists, TransformerLens names included.
	_, err = m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("blocks.0.hook_resid_prex").Output().Save("x") })
	if err == nil || !errors.Is(err, nnsight.ErrUnknownPath) || !strings.Contains(err.Error(), "blocks.0.hook_resid_pre") {
		t.Errorf("misspelt hook: %v", err)
	}
	// A hook name of another place: the message lists the names there and the nearest ones.
	_, err = m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("blocks.0.mlp.hook_pattern").Output().Save("x") })
	if err == nil || !strings.Contains(err.Error(), "other names: hook_pre, hook_post") || !strings.Contains(err.Error(), "blocks.0.attn.hook_pattern") {
		t.Errorf("hook_pattern under mlp: %v", err)
	}
	// Messages about a point name it as the user wrote it.
	_, err = m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("blocks.0.attn.hook_z").Output().Set([]float32{1, 2, 3}) })
	if err == nil || !errors.Is(err, nnsight.ErrShape) || !strings.Contains(err.Error(), "(blocks.0.attn.hook_z)") {
		t.Errorf("bad Set on hook_z: %v", err)
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// Setting hook_attn_scores acts as in TransformerLens, where the mask comes before the hook:
// the identity changes nothing (its -inf entries stay masked), and zeros make every key,
// future ones included, equally likely.
func TestTransformerLensSetAttnScores(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0")
	clean, _ := fx.Tensor(t, "p0/lm_head")
	res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("blocks.0.attn.hook_attn_scores").Output().Set(func(x *nnsight.Node) *nnsight.Node { return x })
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := nnsight.Float32(res.Logits())
	if d := maxAbsDiff(got, clean); d > tol {
		t.Errorf("identity Set on hook_attn_scores changed the logits by %.3g", d)
	}
	res, err = m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("blocks.0.attn.hook_attn_scores").Output().Set(0.0)
		tr.Module("blocks.0.attn.hook_pattern").Output().Save("pattern")
	})
	if err != nil {
		t.Fatal(err)
	}
	p, _, _ := res.Float32("pattern")
	for i, v := range p {
		if math.Abs(float64(v)-1/float64(len(ids))) > 1e-6 {
			t.Fatalf("pattern[%d] = %v after zero scores, want 1/%d everywhere", i, v, len(ids))
		}
	}
	got, _, _ = nnsight.Float32(res.Logits())
	if maxAbsDiff(got, clean) < 1e-3 {
		t.Error("zero scores did not change the logits")
	}
}

// Zeroing one head of hook_result ablates that head as zeroing its hook_z does.
func TestTransformerLensHookResultAblatesHead(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	ids := fx.Ints(t, "p0")
	for h := 0; h < m.Config().NHead; h++ {
		res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
			tr.Module("blocks.1.attn.hook_result").Output().At(2, h, h+1).Set(0.0)
		})
		if err != nil {
			t.Fatal(err)
		}
		got, _, _ := nnsight.Float32(res.Logits())
		want, _ := fx.Tensor(t, fmt.Sprintf("tl/p0/ablate/blocks.1.attn.hook_z/%d/logits", h))
		if d := maxAbsDiff(got, want); d > tol {
			t.Errorf("head %d: max|go - reference| = %.3g", h, d)
		}
	}
}

// The printed tree ends with the TransformerLens names, one per layer pattern.
func TestTransformerLensNamesInTree(t *testing.T) {
	m, _ := loadTiny(t, "tiny-b")
	tree := m.String()
	t.Log("\n" + tree)
	for _, want := range []string{"TransformerLens names (paths too; L = 0-2):", "hook_embed,", "blocks.L.attn.hook_z,",
		"blocks.L.hook_resid_pre,", "ln_final.hook_normalized"} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q", want)
		}
	}
}

// Edits take TransformerLens names for the parent and the node: scaling hook_z (a label) by
// 0 in block 1 is every head ablated; hook_pattern is the label attn_weights.
func TestTransformerLensNamesInEdits(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0")
	run := func(e *edit.Edit) []float32 {
		t.Helper()
		if err := m.LoadEdits(e); err != nil {
			t.Fatal(err)
		}
		defer m.ClearEdits()
		res, err := m.Trace(ids, func(tr *nnsight.Tracer) {})
		if err != nil {
			t.Fatal(err)
		}
		got, _, _ := nnsight.Float32(res.Logits())
		return got
	}
	// Both heads' z zeroed = both heads' pattern zeroed.
	z := run(edit.New("blocks.1.attn", "hook_z", "zw", edit.Scale(0)))
	p := run(edit.New("blocks.-1.attn", "hook_pattern", "pw", edit.Scale(0)))
	clean, _ := fx.Tensor(t, "p0/lm_head")
	if d := maxAbsDiff(z, p); d > tol {
		t.Errorf("hook_z x0 and hook_pattern x0 differ by %.3g", d)
	}
	if maxAbsDiff(z, clean) < 1e-3 {
		t.Error("the hook_z edit changed nothing")
	}
}

// hook_result (as TransformerLens's use_attn_result) is in a cache only when a pattern asks
// for it: caches of everything leave it out.
func TestTransformerLensHookResultOnlyWhenAsked(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0")
	all, err := m.RunWithCache(ids)
	if err != nil {
		t.Fatal(err)
	}
	var tc, asked *nnsight.Cache
	if _, err := m.Trace(ids, func(tr *nnsight.Tracer) { tc = tr.Cache(); asked = tr.Cache("**.hook_result") }); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(slices.Clone(all.Paths), tc.Paths...) {
		if strings.HasSuffix(p, "hook_result") {
			t.Errorf("a cache of everything has %s", p)
		}
	}
	if !slices.Contains(all.Paths, "transformer.h.0.attn.hook_z") || !slices.Contains(tc.Paths, "transformer.h.0.attn.hook_z") {
		t.Errorf("caches of everything lack hook_z: %v", all.Paths)
	}
	if len(asked.Paths) != 2 {
		t.Errorf("**.hook_result cached %v", asked.Paths)
	}
	got, _, err := asked.Float32("blocks.1.attn.hook_result")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fx.Tensor(t, "tl/p0/blocks.1.attn.hook_result")
	if d := maxAbsDiff(got, want); d > tol {
		t.Errorf("hook_result: max|diff| %.3g", d)
	}
}

// Gradients at TransformerLens names: the names of existing points give the reference's
// gradients; hook_attn_scores' gradient is the softmax's backward of hook_pattern's, and each
// head's hook_result gradient is hook_attn_out's (their sum plus the bias is the output).
func TestTransformerLensGradients(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	A, B := fx.Int(t, "A"), fx.Int(t, "B")
	res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
		logits := tr.Logits()
		for _, h := range []string{"blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_attn_scores",
			"blocks.1.attn.hook_result", "blocks.1.hook_attn_out"} {
			tr.Module(h).Output().Grad().Save(h)
		}
		tr.Backward(func() *nnsight.Node {
			l := logits.Node()
			last := g.Reshape(g.Slice(l, g.AxisElem(0), g.AxisElem(-1), g.AxisRange()), -1)
			return g.Reshape(g.Sub(g.Slice(last, g.AxisElem(A)), g.Slice(last, g.AxisElem(B))))
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) []float32 {
		d, _, err := res.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	check := func(what string, got, want []float32) {
		t.Helper()
		if d := maxAbsDiff(got, want); d > tol {
			t.Errorf("%s: max|diff| %.3g", what, d)
		}
	}
	want, _ := fx.Tensor(t, "p0/grad/transformer.h.0")
	check("grad blocks.0.hook_resid_post", get("blocks.0.hook_resid_post"), want)
	gp, _ := fx.Tensor(t, "p0/grad/transformer.h.1.attn.attn_weights")
	check("grad blocks.1.attn.hook_pattern", get("blocks.1.attn.hook_pattern"), gp)
	// Softmax backward on each row: gs = p * (gp - sum(p * gp)).
	p, shape := fx.Tensor(t, "tl/p0/blocks.1.attn.hook_pattern")
	k := shape[len(shape)-1]
	gs := make([]float32, len(p))
	for r := 0; r < len(p); r += k {
		dot := 0.0
		for j := r; j < r+k; j++ {
			dot += float64(p[j]) * float64(gp[j])
		}
		for j := r; j < r+k; j++ {
			gs[j] = float32(float64(p[j]) * (float64(gp[j]) - dot))
		}
	}
	check("grad blocks.1.attn.hook_attn_scores", get("blocks.1.attn.hook_attn_scores"), gs)
	out := get("blocks.1.hook_attn_out") // [1, T, E]
	result := get("blocks.1.attn.hook_result")
	H, E := m.Config().NHead, m.Config().NEmbd
	for h := 0; h < H; h++ {
		var head []float32
		for i := 0; i < len(out)/E; i++ {
			head = append(head, result[(i*H+h)*E:(i*H+h+1)*E]...)
		}
		check(fmt.Sprintf("grad blocks.1.attn.hook_result head %d", h), head, out)
	}
}
