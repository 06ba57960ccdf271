package nnsight_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

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
