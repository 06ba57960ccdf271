package edit_test

import (
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

// rowNamed returns the name of the first row of gr with the given op and first argument
// ("" for any).
func rowNamed(t *testing.T, gr *edit.Graph, target, arg string) string {
	t.Helper()
	for _, n := range gr.Nodes {
		if n.Target == target && (arg == "" || len(n.Args) > 0 && n.Args[0] == arg) {
			return n.Name
		}
	}
	t.Fatalf("no %s(%s, ...) row in\n%s", target, arg, gr.Table())
	return ""
}

// Softmax is fused by the backend: an edit of a node of its decomposed form (here the
// denominator, the sum of exp) must act on what runs. Doubling the denominator halves the
// attention weights.
func TestEditInsideSoftmaxActs(t *testing.T) {
	m := tinyGPT2(t)
	gr, err := m.Graph("transformer.h.1.attn")
	if err != nil {
		t.Fatal(err)
	}
	exp := rowNamed(t, gr, "Exp", "")
	sum := rowNamed(t, gr, "ReduceSum", exp)
	base := logits(t, m, nil)
	want := logits(t, m, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.1.attn.attn_weights").Output().Set(func(w *g.Node) *g.Node { return g.MulScalar(w, 0.5) })
	})
	if nnsight.MaxAbsDiff(base, want) < 1e-4 {
		t.Fatal("halving the attention weights does not change the logits: the test would prove nothing")
	}
	if err := m.LoadEdits(edit.New("transformer.h.1.attn", sum, "denominator", edit.Scale(2))); err != nil {
		t.Fatal(err)
	}
	sameValues(t, "edit of the softmax denominator "+sum, logits(t, m, nil), want, 1e-5)
	// With fusion on or off.
	plain := tinyGPT2(t, nnsight.NoFusion())
	if err := plain.LoadEdits(edit.New("transformer.h.1.attn", sum, "denominator", edit.Scale(2))); err != nil {
		t.Fatal(err)
	}
	sameValues(t, "the same edit without fusion", logits(t, plain, nil), want, 1e-5)
}

// deadModel has values nothing returns: a labelled value it does not use, the decomposed
// form of a softmax GoMLX fuses, and a child whose output it drops.
type deadModel struct{}

func (deadModel) TypeName() string { return "Dead" }
func (deadModel) Children() []module.Child {
	return []module.Child{{Name: "double", Module: edit.Scale(2)}, {Name: "dropped", Module: edit.Scale(3)}}
}
func (deadModel) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	x := in[0]
	c.Label("unused", g.MulScalar(x, 3))
	s := g.Softmax(x, -1)
	y := c.Call1("double", x)
	c.Call1("dropped", x)
	return []*module.Node{g.Add(s, y)}
}

var deadInput = [][]float32{{1, 2, 3}, {0, -1, 4}}

func TestEditOfDeadNodeIsRejected(t *testing.T) {
	m := nnsight.New(deadModel{}, nnsight.WithBackend("go"), nnsight.WithExampleInput(deadInput))
	gr, err := m.Graph("")
	if err != nil {
		t.Fatal(err)
	}
	exp := rowNamed(t, gr, "Exp", "")
	fused := rowNamed(t, gr, "FusedSoftmax", "")
	for _, c := range []struct {
		e    *edit.Edit
		want []string
	}{
		{edit.New("", "unused", "w", edit.Scale(0)), []string{`"unused"`, "not used"}},
		{edit.New("", exp, "w", edit.Scale(1000)), []string{`"` + exp + `"`, `"` + fused + `"`, "FusedSoftmax"}},
		{edit.New("dropped", "mul", "w", edit.Scale(0)), []string{"dropped", "model's output"}},
		{edit.New("double", "mul", "w", edit.Scale(0)).OnCall(1), []string{"double", "call 1", "1 time"}},
	} {
		err := m.LoadEdits(c.e)
		if err == nil {
			t.Errorf("edit %s of a dead node was accepted", c.e)
			m.ClearEdits()
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("edit %s: error lacks %q: %v", c.e, w, err)
			}
		}
	}
	// The live node it names works.
	if err := m.LoadEdits(edit.New("", fused, "w", edit.Scale(0))); err != nil {
		t.Fatal(err)
	}
	res, err := m.Trace(deadInput, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ := res.Float32("output.0")
	sameValues(t, "softmax scaled by 0", out, []float32{2, 4, 6, 0, -2, 8}, 1e-6)
}

// reuser uses its input itself and passes it to a child: an edit of the child's input
// changes only what the child sees.
type reuser struct{}

func (reuser) Children() []module.Child {
	return []module.Child{{Name: "five", Module: edit.Scale(5)}, {Name: "child", Module: edit.Scale(2)}}
}
func (reuser) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	y := c.Call1("five", in[0])
	return []*module.Node{g.Add(y, c.Call1("child", in[0]))}
}

func TestEditOfChildInputLeavesTheCallerAlone(t *testing.T) {
	x := [][]float32{{1, 2}}
	m := nnsight.New(reuser{}, nnsight.WithBackend("go"), nnsight.WithExampleInput(x))
	if err := m.LoadEdits(edit.New("child", "x", "w", edit.Scale(0))); err != nil {
		t.Fatal(err)
	}
	res, err := m.Trace(x, func(tr *nnsight.Tracer) { tr.Module("five").Output().Save("five") })
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ := res.Float32("output.0")
	sameValues(t, "5x + child(0)", out, []float32{5, 10}, 1e-6)
	five, _, _ := res.Float32("five")
	sameValues(t, "the saved output of five, which the edit does not touch", five, []float32{5, 10}, 1e-6)
}

// Runs fuse LayerNorm where no edit rewrites the module; an edit of a node inside ln_1, from
// the block or from ln_1 itself, acts on what runs. With weight 1 and bias 0 (the random
// model's), doubling the denominator halves ln_1's output.
func TestEditInsideLayerNormActs(t *testing.T) {
	m := tinyGPT2(t)
	want := logits(t, m, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.ln_1").Output().Set(func(x *g.Node) *g.Node { return g.MulScalar(x, 0.5) })
	})
	for _, parent := range []string{"transformer.h.0", "transformer.h.0.ln_1"} {
		gr, err := m.Graph(parent)
		if err != nil {
			t.Fatal(err)
		}
		sqrt := rowNamed(t, gr, "Sqrt", "")
		if err := m.LoadEdits(edit.New(parent, sqrt, "denominator", edit.Scale(2))); err != nil {
			t.Fatal(err)
		}
		sameValues(t, "edit of "+parent+"."+sqrt, logits(t, m, nil), want, 1e-5)
		m.ClearEdits()
	}
}
