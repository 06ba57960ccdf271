package nnsight_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/nnsight"
)

func logitsOf(t *testing.T, res *nnsight.Result) ([]float32, []int) {
	t.Helper()
	d, s, err := nnsight.Float32(res.Logits())
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

func TestZeroAblationMatchesReference(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
				tr.Module("transformer.h.0.mlp").Output().Set(func(x *g.Node) *g.Node { return g.ZerosLike(x) })
			})
			if err != nil {
				t.Fatal(err)
			}
			d, s := logitsOf(t, res)
			fx.Compare(t, "p0/ablate/transformer.h.0.mlp/logits", d, s, tol)
		})
	}
}

// attn_output is [batch, pos, embd] with the heads side by side on embd: At(2, h*hd,
// (h+1)*hd) is head h. The reference zeroes head h before the heads are merged, in the
// per-head layout [1, H, T, D], so it does not share the merge's convention.
func TestSetSliceOneHead(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			hd := m.Config().HeadDim()
			for h := 0; h < m.Config().NHead; h++ {
				res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
					tr.Module("transformer.h.1.attn.attn_output").Output().At(2, h*hd, (h+1)*hd).Set(0.0)
				})
				if err != nil {
					t.Fatal(err)
				}
				d, s := logitsOf(t, res)
				fx.Compare(t, fmt.Sprintf("p0/ablate_head/%d/transformer.h.1.attn/logits", h), d, s, tol)
			}
		})
	}
}

func TestValueFromOneModuleIntoAnother(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
				h0in := tr.Module("transformer.h.0").Input()
				tr.Module("transformer.h.1").Input().Set(func(x *g.Node) *g.Node { return g.Add(x, h0in.Node()) })
			})
			if err != nil {
				t.Fatal(err)
			}
			d, s := logitsOf(t, res)
			fx.Compare(t, "p0/add/h0_into_h1_input/logits", d, s, tol)
		})
	}
}

func TestEditValueTimes1000AndClear(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			ids := fx.Ints(t, "p0")
			plain, err := m.Trace(ids, nil)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := logitsOf(t, plain)
			// A wrapper on query loaded first must not hide the value edit (edits compose).
			if err := m.LoadEdits(edit.New("transformer.h.1.attn", "query", "query_wrapper", edit.Identity()),
				edit.New("transformer.h.1.attn", "value", "value_edit", edit.Scale(1000)),
				edit.New("transformer.h.1.attn", "attn_weights", "weights_wrapper", edit.Identity())); err != nil {
				t.Fatal(err)
			}
			res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
				tr.Module("transformer.h.1.attn.value_edit").Output().Save("edited")
				tr.Module("transformer.h.1.attn.value_edit").Input().Save("orig")
			})
			if err != nil {
				t.Fatal(err)
			}
			d, s := logitsOf(t, res)
			fx.Compare(t, "p0/edit_value_x1000/transformer.h.1.attn/logits", d, s, tol)
			orig, _, _ := res.Float32("orig")
			edited, _, _ := res.Float32("edited")
			want, _ := fx.Tensor(t, "p0/transformer.h.1.attn.value")
			// The edit wraps the 3-D value, before the head split, as the seed's does.
			fx.Compare(t, "p0/transformer.h.1.attn.value", orig, []int{1, len(ids), m.Config().NEmbd}, tol)
			for i := range edited {
				if math.Abs(float64(edited[i]-1000*want[i])) > 1e-3*math.Abs(float64(1000*want[i]))+1e-3 {
					t.Fatalf("wrapper output[%d] = %g, want 1000 x %g", i, edited[i], want[i])
				}
			}
			if !strings.Contains(m.String(), "[edit]") {
				t.Errorf("the printed model does not show the loaded edit:\n%s", m)
			}
			if err := m.ClearEdits(); err != nil {
				t.Fatal(err)
			}
			after, err := m.Trace(ids, nil)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := logitsOf(t, after)
			for i := range a {
				if a[i] != before[i] {
					t.Fatalf("after ClearEdits logits[%d] = %v, before the edit %v (must be bit for bit)", i, a[i], before[i])
				}
			}
		})
	}
}

func TestGradientMatchesAutograd(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			A, B := fx.Int(t, "A"), fx.Int(t, "B")
			res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
				logits := tr.Logits()
				tr.Module("transformer.h.0").Output().Grad().Save("g_h0")
				tr.Module("transformer.h.1.attn.attn_weights").Output().Grad().Save("g_w")
				tr.Backward(func() *g.Node {
					l := logits.Node()
					last := g.Slice(l, g.AxisElem(0), g.AxisElem(-1), g.AxisRange())
					last = g.Reshape(last, -1)
					return g.Reshape(g.Sub(g.Slice(last, g.AxisElem(A)), g.Slice(last, g.AxisElem(B))))
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			d, s, _ := res.Float32("g_h0")
			fx.Compare(t, "p0/grad/transformer.h.0", d, s, tol)
			d, s, _ = res.Float32("g_w")
			fx.Compare(t, "p0/grad/transformer.h.1.attn.attn_weights", d, s, tol)
		})
	}
}

func TestActivationPatchingInOneBatch(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			clean, corrupt := fx.Ints(t, "c"), fx.Ints(t, "k")
			// Clean -> corrupted patch of block 1's output at position 2, in one batched run.
			res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
				var cleanH *nnsight.Proxy
				tr.Invoke(clean, func(iv *nnsight.Tracer) {
					cleanH = iv.Module("transformer.h.1").Output().At(1, 2, 3)
				})
				tr.Invoke(corrupt, func(iv *nnsight.Tracer) {
					iv.Module("transformer.h.1").Output().At(1, 2, 3).Set(cleanH)
					iv.Logits().Save("patched")
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			d, s, _ := res.Float32("patched")
			fx.Compare(t, "patch/logits/L1P2", d, s, tol)
			all, _ := logitsOf(t, res)
			fx.Compare(t, "patch/clean_logits", all[:len(all)/2], s, tol)

			// The sweep: every layer x position, each a trace; the patch value is a graph input
			// so the sweep compiles once.
			nl := m.Config().NLayer
			want, _ := fx.Tensor(t, "patch/sweep")
			A, B := fx.Int(t, "A"), fx.Int(t, "B")
			before := m.Engine().Compiles()
			for L := 0; L < nl; L++ {
				for P := 0; P < len(clean); P++ {
					res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
						var src *nnsight.Proxy
						tr.Invoke(clean, func(iv *nnsight.Tracer) { src = iv.Module(fmt.Sprintf("transformer.h.%d", L)).Output().At(1, P, P+1) })
						tr.Invoke(corrupt, func(iv *nnsight.Tracer) {
							iv.Module(fmt.Sprintf("transformer.h.%d", L)).Output().At(1, P, P+1).Set(src)
							iv.Logits().Save("patched")
						})
					})
					if err != nil {
						t.Fatal(err)
					}
					d, s, _ := res.Float32("patched")
					V := s[2]
					last := d[(s[1]-1)*V:]
					diff := float64(last[A] - last[B])
					if e := math.Abs(diff - float64(want[L*len(clean)+P])); e > 1e-4*math.Max(1, math.Abs(diff)) {
						t.Errorf("sweep L=%d P=%d: logit diff %g, reference %g", L, P, diff, want[L*len(clean)+P])
					}
				}
			}
			if n := m.Engine().Compiles() - before; n > nl*len(clean) {
				t.Errorf("sweep compiled %d programs for %d traces", n, nl*len(clean))
			}
		})
	}
}

func TestPaddingDoesNotChangeResults(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			p0, p1 := fx.Ints(t, "p0"), fx.Ints(t, "p1")
			res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
				tr.Invoke(p0, func(iv *nnsight.Tracer) { iv.Module("transformer.h.1.attn.value").Output().Save("v0") })
				tr.Invoke(p1, func(iv *nnsight.Tracer) {
					iv.Logits().Save("l1")
					iv.Module("transformer.h.1.attn.value").Output().Save("v1")
				})
				tr.Module("transformer.h.0").Output().Save("batch_h0")
			})
			if err != nil {
				t.Fatal(err)
			}
			// p1 is shorter: left padded by len(p0)-len(p1).
			pad := len(p0) - len(p1)
			d, s, _ := res.Float32("l1")
			V := s[2]
			fx.Compare(t, "p1/lm_head", d[pad*V:], []int{1, len(p1), V}, tol)
			_, bs, _ := res.Float32("batch_h0")
			if bs[0] != 2 {
				t.Errorf("the batch-wide view has batch %d, want 2", bs[0])
			}
			v0, vs, _ := res.Float32("v0")
			fx.Compare(t, "p0/transformer.h.1.attn.value", v0, vs, tol)
		})
	}
}
