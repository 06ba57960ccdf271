package edit_test

import (
	g "github.com/gomlx/gomlx/core/graph"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/nnsight"
)

// A name means one node in every view: each row the folded view shows is, in the inlined
// view, the row of the same op on the same arguments.
func TestFoldedViewUsesTheInlinedNames(t *testing.T) {
	m := tinyGPT2(t)
	for _, p := range []string{"transformer.h.0", "transformer.h.0.attn", "transformer.h.0.mlp", ""} {
		inl, err := m.Graph(p)
		if err != nil {
			t.Fatal(err)
		}
		fold, err := m.Graph(p, edit.Folded())
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, n := range fold.Nodes {
			if seen[n.Name] {
				t.Errorf("%s: folded name %q used twice", p, n.Name)
			}
			seen[n.Name] = true
			if n.Op == edit.Output {
				continue
			}
			if n.Op == edit.CallModule {
				if r := inl.Find(n.Name); r != nil && r.Op != edit.CallModule {
					t.Errorf("%s: folded call_module row %q names the inlined %s row %q", p, n.Name, r.Op, r.Target)
				}
				continue
			}
			r := inl.Find(n.Name)
			if r == nil {
				t.Errorf("%s: folded row %q (%s) is not in the inlined view", p, n.Name, n.Target)
				continue
			}
			if r.Op != n.Op || r.Target != n.Target || r.Shape != n.Shape || r.Kwargs != n.Kwargs {
				t.Errorf("%s: %q is %s %s %s in the folded view but %s %s %s inlined", p, n.Name,
					n.Op, n.Target, n.Shape, r.Op, r.Target, r.Shape)
			}
		}
	}
}

// The block's first residual add r = x + attn(ln_1(x)), by the name the folded view prints,
// is the node the edit wraps: doubling it is the same as doubling ln_2's input and adding r
// once more to the block's output.
func TestEditByFoldedNameWrapsThatNode(t *testing.T) {
	m := tinyGPT2(t)
	fold, err := m.Graph("transformer.h.0", edit.Folded())
	if err != nil {
		t.Fatal(err)
	}
	var resid string
	for _, n := range fold.Nodes {
		if n.Target == "Add" && strings.Join(n.Args, ",") == "x,attn" {
			resid = n.Name
		}
	}
	if resid == "" {
		t.Fatalf("no Add(x, attn) row in\n%s", fold.Table())
	}
	want := logits(t, m, func(tr *nnsight.Tracer) {
		x := tr.Module("transformer.h.0").Input()
		a := tr.Module("transformer.h.0.attn").Output()
		tr.Module("transformer.h.0.ln_2").Input().Set(func(r *g.Node) *g.Node { return g.MulScalar(r, 2) })
		tr.Module("transformer.h.0").Output().Set(func(o *g.Node) *g.Node { return g.Add(o, g.Add(x.Node(), a.Node())) })
	})
	if base := logits(t, m, nil); nnsight.MaxAbsDiff(base, want) < 1e-4 {
		t.Fatal("the reference change does not change the logits: the test would prove nothing")
	}
	if err := m.LoadEdits(edit.New("transformer.h.0", resid, "resid_edit", edit.Scale(2))); err != nil {
		t.Fatal(err)
	}
	sameValues(t, "edit of "+resid+" vs the same change by trace", logits(t, m, nil), want, 1e-5)

	// A folded call_module row is the child call's output.
	m.ClearEdits()
	want = logits(t, m, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.ln_1").Output().Set(func(x *g.Node) *g.Node { return g.MulScalar(x, -3) })
	})
	if err := m.LoadEdits(edit.New("transformer.h.0", "ln_1", "ln_1_edit", edit.Scale(-3))); err != nil {
		t.Fatal(err)
	}
	sameValues(t, "edit of the call_module row ln_1 vs a trace", logits(t, m, nil), want, 1e-5)
}

// The kwargs column holds an op's static parameters as torch.fx prints them, never GoMLX's
// internal node text (flags, output shapes, memory).
func TestKwargsAreStaticParameters(t *testing.T) {
	m := tinyGPT2(t)
	gr, err := m.Graph("transformer.h.0.attn")
	if err != nil {
		t.Fatal(err)
	}
	var reshape, transpose bool
	for _, n := range gr.Nodes {
		for _, bad := range []string{"->", "mem:", "StopGradient", "[#", "Node"} {
			if strings.Contains(n.Kwargs, bad) {
				t.Errorf("%s (%s): kwargs %q contain %q", n.Name, n.Target, n.Kwargs, bad)
			}
		}
		reshape = reshape || strings.HasPrefix(n.Kwargs, "dimensions=(1, 3, 2, 4)")
		transpose = transpose || n.Kwargs == "permutation=(0, 2, 1, 3)"
	}
	if !reshape || !transpose {
		t.Errorf("no reshape with dimensions=(1, 3, 2, 4) or transpose with permutation=(0, 2, 1, 3):\n%s", gr.Table())
	}
}
