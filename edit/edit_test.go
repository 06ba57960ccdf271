package edit_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/internal/toy"
	"github.com/gonnsight/gonnsight/nnsight"
)

func toyWeights() map[string]*tensors.Tensor {
	return map[string]*tensors.Tensor{
		"layer1.weight":       tensors.FromValue([][]float32{{2}}),
		"layer1.bias":         tensors.FromValue([]float32{1}),
		"layer2.layer.weight": tensors.FromValue([][]float32{{3}}),
		"layer2.layer.bias":   tensors.FromValue([]float32{-1}),
	}
}

var toyInput = [][]float32{{1}, {2}}

func rowsOf(gr *edit.Graph, op string) []*edit.GNode {
	var out []*edit.GNode
	for _, n := range gr.Nodes {
		if n.Op == op {
			out = append(out, n)
		}
	}
	return out
}

func TestToyMGraphTable(t *testing.T) {
	m := nnsight.New(toy.M(), nnsight.WithWeights(toyWeights()), nnsight.WithBackend("go"), nnsight.WithExampleInput(toyInput))
	gr, err := m.Graph("")
	if err != nil {
		t.Fatal(err)
	}
	table := gr.Table()
	t.Log("\n" + table)
	var printed strings.Builder
	if err := edit.FprintGraph(&printed, m, ""); err != nil || printed.String() != table {
		t.Errorf("FprintGraph wrote %q (%v), want the table", printed.String(), err)
	}
	if err := edit.FprintGraph(&printed, m, "layer9"); err == nil || !strings.Contains(err.Error(), "layer9") {
		t.Errorf("FprintGraph of a missing module: %v", err)
	}
	if ph := rowsOf(gr, edit.Placeholder); len(ph) != 1 || ph[0].Name != "x" {
		t.Errorf("want one placeholder x, got %v", ph)
	}
	var attrs []string
	for _, n := range rowsOf(gr, edit.GetAttr) {
		attrs = append(attrs, n.Target)
	}
	if strings.Join(attrs, ",") != "layer1.weight,layer1.bias,layer2.layer.weight,layer2.layer.bias" {
		t.Errorf("get_attr rows %v", attrs)
	}
	var mul *edit.GNode
	for _, n := range rowsOf(gr, edit.CallFunction) {
		if n.Target == "Mul" {
			mul = n
		}
	}
	if mul == nil || len(mul.Args) != 2 || mul.Args[1] != "100" {
		t.Errorf("want a Mul by the literal 100, got %+v", mul)
	}
	if cm := rowsOf(gr, edit.CallModule); len(cm) != 1 || cm[0].Target != "dropout" {
		t.Errorf("want the dropout as a call_module row in the inlined view, got %v", cm)
	}
	if gr.Find("getitem") == nil || gr.Find("getitem_1") == nil {
		t.Errorf("want getitem and getitem_1 rows for the split:\n%s", table)
	}
	out := rowsOf(gr, edit.Output)
	if len(out) != 1 || strings.Join(out[0].Args, ",") != "getitem,getitem_1" {
		t.Errorf("output row %v", out)
	}
	dots := 0
	for _, n := range rowsOf(gr, edit.CallFunction) {
		if n.Target == "DotGeneral" {
			dots++
		}
	}
	if dots != 2 {
		t.Errorf("want the two linear layers' DotGeneral ops, got %d", dots)
	}

	folded, err := m.Graph("", edit.Folded())
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, n := range rowsOf(folded, edit.CallModule) {
		mods = append(mods, n.Target)
	}
	if strings.Join(mods, ",") != "layer1,layer2,dropout" {
		t.Errorf("folded view call_module rows %v:\n%s", mods, folded.Table())
	}
	if len(rowsOf(folded, edit.GetAttr)) != 0 {
		t.Errorf("folded view must not show the children's parameters:\n%s", folded.Table())
	}
	// Names are stable from build to build.
	again, _ := m.Graph("")
	if again.Table() != table {
		t.Errorf("the table changed between two captures")
	}
	code := gr.Code()
	if !strings.Contains(code, "def forward(self, x)") || !strings.Contains(code, "return (getitem, getitem_1)") {
		t.Errorf("readable form:\n%s", code)
	}
}

func TestToyMOutputs(t *testing.T) {
	m := nnsight.New(toy.M(), nnsight.WithWeights(toyWeights()), nnsight.WithBackend("go"))
	res, err := m.Trace(toyInput, func(tr *nnsight.Tracer) {
		tr.Module("layer2").Output().Save("l2")
	})
	if err != nil {
		t.Fatal(err)
	}
	// layer1: 2x+1 -> 3, 5; layer2: (3y-1)*100 -> 800, 1400.
	l2, _, _ := res.Float32("l2")
	if l2[0] != 800 || l2[1] != 1400 {
		t.Errorf("layer2 output %v, want [800 1400]", l2)
	}
	o1, _, _ := res.Float32("output.1")
	if len(o1) != 1 || o1[0] != 1400 {
		t.Errorf("second split part %v, want [1400]", o1)
	}
}

func TestExplain(t *testing.T) {
	m := nnsight.New(toy.M(), nnsight.WithWeights(toyWeights()), nnsight.WithBackend("go"), nnsight.WithExampleInput(toyInput))
	var b strings.Builder
	e, err := edit.Explain(m, nil, &b)
	if err != nil {
		t.Fatal(err)
	}
	// A GoMLX forward is one graph by construction (Go code between ops runs while it is
	// built), so the counts worth checking are the measured ones: the ops must be exactly the
	// root graph's call_function nodes, in order, and M makes five module calls.
	gr, err := m.Graph("")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	types := map[string]int{}
	for _, n := range gr.Nodes {
		if n.Op == edit.CallFunction {
			want = append(want, n.Target)
			types[n.Target]++
		}
	}
	if len(want) < 5 {
		t.Fatalf("M's graph has %d ops:\n%s", len(want), gr.Table())
	}
	if e.OpCount != len(want) || len(e.OpsPerGraph) != 1 || !slices.Equal(e.OpsPerGraph[0], want) || !maps.Equal(e.OpTypes, types) {
		t.Errorf("explanation: %d ops %v, types %v; the captured graph has %d: %v", e.OpCount, e.OpsPerGraph, e.OpTypes, len(want), want)
	}
	if e.GraphCount != 1 || e.GraphBreakCount != 0 || e.ModuleCalls != 5 {
		t.Errorf("explanation %+v", e)
	}
	for _, line := range []string{"Graph Count: 1\n", fmt.Sprintf("Op Count: %d\n", len(want)), "Module Calls: 5\n",
		fmt.Sprintf("Graph 0: %d ops", len(want))} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("printed explanation lacks %q:\n%s", line, b.String())
		}
	}
	t.Logf("M: %d ops", len(want))
}

func TestWrapIntermediateValue(t *testing.T) {
	x := [][]float32{{1, 2, 3}, {4, 5, 6}}
	m := nnsight.New(toy.ValueModel{}, nnsight.WithBackend("go"), nnsight.WithExampleInput(x))
	gr, err := m.Graph("")
	if err != nil {
		t.Fatal(err)
	}
	if gr.Find("value") == nil {
		t.Fatalf("no node value in\n%s", gr.Table())
	}
	if err := m.LoadEdits(edit.New("", "value", "value_wrapper", edit.Identity())); err != nil {
		t.Fatal(err)
	}
	res, err := m.Trace(x, func(tr *nnsight.Tracer) {
		tr.Module("value_wrapper").Input().Save("in")
		tr.Module("value_wrapper").Output().Save("out")
	})
	if err != nil {
		t.Fatal(err)
	}
	in, shape, _ := res.Float32("in")
	out, _, _ := res.Float32("output.0")
	if shape[0] != 2 || shape[1] != 1 || in[0] != 1 || in[1] != 4 {
		t.Errorf("value_wrapper input %v %v, want [[1] [4]]", in, shape)
	}
	want := []float32{1, 2, 3, 16, 20, 24}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("identity edit changed the output: %v, want %v", out, want)
		}
	}
	m.ClearEdits()
	if err := m.LoadEdits(edit.New("", "value", "value_edit", edit.Scale(1000))); err != nil {
		t.Fatal(err)
	}
	res, err = m.Trace(x, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ = res.Float32("output.0")
	want = []float32{1000, 2000, 3000, 16000, 20000, 24000}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("x1000 edit: output %v, want %v", out, want)
		}
	}
}

func TestEditErrors(t *testing.T) {
	x := [][]float32{{1, 2, 3}}
	m := nnsight.New(toy.ValueModel{}, nnsight.WithBackend("go"), nnsight.WithExampleInput(x))
	err := m.LoadEdits(edit.New("", "valeu", "w", edit.Identity()))
	if err == nil || !strings.Contains(err.Error(), `no node "valeu"`) || !strings.Contains(err.Error(), "value") {
		t.Errorf("unknown node: %v", err)
	}
	if err := m.LoadEdits(edit.New("", "value", "w", edit.Identity())); err != nil {
		t.Fatal(err)
	}
	err = m.LoadEdits(edit.New("", "value", "w", edit.Identity()))
	if err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("duplicate wrapper name: %v", err)
	}
	m.ClearEdits()
	grow := nnsight.Fn1("Grow", growLastAxis)
	err = m.LoadEdits(edit.New("", "value", "g", grow))
	if err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("shape-changing edit: %v", err)
	}
	if len(m.Edits()) != 0 {
		t.Errorf("a failed LoadEdits must load nothing, loaded %v", m.Edits())
	}
}
