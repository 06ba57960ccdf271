package nnsight_test

import (
	"fmt"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

// tinyRandom is a one-layer GPT-2 small enough for tests that build many graphs.
func tinyRandom(t testing.TB, opts ...nnsight.Option) *nnsight.Model {
	t.Helper()
	m := tinyRandomLazy(opts...)
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	return m
}

// tinyRandomLazy is tinyRandom not loaded yet (a notebook cell's declaration).
func tinyRandomLazy(opts ...nnsight.Option) *nnsight.Model {
	cfg := gpt2.Config{VocabSize: 50, NPositions: 16, NEmbd: 8, NLayer: 2, NHead: 2, LayerNormEpsilon: 1e-5, Activation: "gelu_new"}
	return nnsight.RandomLanguageModel(cfg, 1, append([]nnsight.Option{nnsight.WithBackend("go")}, opts...)...)
}

// attachment is a wrapper with a child: one (x2), then x0.5, so it is the identity overall.
type attachment struct{ one module.Module }

func (a *attachment) TypeName() string         { return "Attachment" }
func (a *attachment) Children() []module.Child { return []module.Child{{Name: "one", Module: a.one}} }
func (a *attachment) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	return []*module.Node{g.MulScalar(c.Call1("one", in[0]), 0.5)}
}

// Every path under a loaded wrapper works wherever a module path works.
func TestEditWrapperChildrenAreAddressable(t *testing.T) {
	m := tinyRandom(t)
	ids := []int{1, 2, 3}
	base, err := m.Trace(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadEdits(edit.New("transformer.h.1.attn", "query", "attachment", &attachment{one: edit.Scale(2)})); err != nil {
		t.Fatal(err)
	}
	const child = "transformer.h.1.attn.attachment.one"
	if !contains(m.Paths(), child) {
		t.Errorf("Paths() lacks %s: %v", child, m.Paths())
	}
	if s := m.String(); !strings.Contains(s, "(attachment): [edit] Attachment(") || !strings.Contains(s, "(one): EditModule(scale=2)") {
		t.Errorf("the tree print lacks the wrapper's child:\n%s", s)
	}
	res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.1.attn.query").Output().Save("q")
		tr.Module(child).Output().Save("one")
		tr.Module(child).Input().Save("one_in")
	})
	if err != nil {
		t.Fatal(err)
	}
	q, qs, _ := res.Float32("q")
	one, os, _ := res.Float32("one")
	in, _, _ := res.Float32("one_in")
	if len(q) == 0 || len(q) != len(one) || fmt.Sprint(qs) != fmt.Sprint(os) {
		t.Fatalf("query %v and one's output %v differ in shape", qs, os)
	}
	for i := range q {
		if one[i] != 2*q[i] || in[i] != q[i] {
			t.Fatalf("one's input/output [%d] = %v/%v, want query %v and twice it", i, in[i], one[i], q[i])
		}
	}
	a, _ := logitsOf(t, base)
	b, _ := logitsOf(t, res)
	if d := nnsight.MaxAbsDiff(a, b); d > 1e-6 {
		t.Errorf("an identity attachment changed the logits by %g", d)
	}
	scan, err := m.Scan(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := scan.Shapes[child]; !ok {
		t.Errorf("Scan lacks %s:\n%s", child, scan)
	}
	cache, err := m.RunWithCache(ids, "transformer.h.*.attn.attachment.one")
	if err != nil {
		t.Fatal(err)
	}
	if c, _, _ := cache.Float32(child); len(c) != len(one) || c[0] != one[0] {
		t.Errorf("RunWithCache of %s: %v, want %v", child, c, one[:1])
	}
	gr, err := m.Graph(child)
	if err != nil {
		t.Fatal(err)
	}
	if gr.Find("mul") == nil {
		t.Errorf("graph of %s:\n%s", child, gr.Table())
	}
	// A path under a wrapper can itself be edited.
	if err := m.LoadEdits(edit.New(child, "mul", "inner", edit.Scale(0))); err != nil {
		t.Fatal(err)
	}
	res, err = m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module(child + ".inner").Output().Save("inner") })
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := res.Float32("inner"); len(d) != len(q) || nnsight.MaxAbs(d) != 0 {
		t.Errorf("the nested edit's output %v, want zeros", d)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
