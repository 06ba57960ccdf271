package nnsight_test

// Ports of ndif-team/nnsight tests/test_iter_edge_cases.py that use today's API. The ports
// that need Iter, invokes in Generate and Streamer are in iter_edge_cases_issue11_test.go.
//
// nnsight's tracer.iter[i] counts every call of a module, so inside one trace it selects
// the i-th call of a module its forward calls several times. gonnsight separates the two:
// Envoy.Call(i) is the i-th call within a forward, Tracer.Iter the generation steps.

import (
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

// recurrentInner is the peer's RecurrentInner: forward runs self.linear 3 times.
type recurrentInner struct{}

func (recurrentInner) Children() []module.Child {
	return []module.Child{{Name: "linear", Module: module.NewLinear(4, 4)}}
}
func (recurrentInner) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	x := in[0]
	for i := 0; i < 3; i++ {
		x = c.Call1("linear", x)
	}
	return []*module.Node{x}
}

var recurrentBias = []float32{0.5, -1, 2, 0.25}

func recurrentModel() *nnsight.Model {
	w := make([]float32, 16)
	for i := range w {
		w[i] = float32(i%5)*0.1 - 0.2
	}
	return nnsight.New(recurrentInner{}, nnsight.WithBackend("go"), nnsight.WithWeights(map[string]*tensors.Tensor{
		"linear.weight": tensors.FromFlatDataAndDimensions(w, 4, 4),
		"linear.bias":   tensors.FromFlatDataAndDimensions(append([]float32(nil), recurrentBias...), 4),
	}))
}

func smallInput() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions([]float32{1.5, -0.3, 0.8, -1.1}, 1, 4)
}

// tests/test_iter_edge_cases.py::TestRecurrentInnerIter::test_iter_indexes_inner_calls_within_one_trace
// Each call's output feeds the next call: call i+1's input is call i's output.
func TestIterEdge_RecurrentInnerIter_IterIndexesInnerCallsWithinOneTrace(t *testing.T) {
	m := recurrentModel()
	res, err := m.Trace(smallInput(), func(tr *nnsight.Tracer) {
		for i, n := range []string{"c0", "c1", "c2"} {
			tr.Module("linear").Call(i).Output().Save(n)
		}
		tr.Module("linear").Call(1).Input().Save("in1")
	})
	must(t, err)
	for _, n := range []string{"c0", "c1", "c2"} {
		if _, s := f32(t, res, n); len(s) != 2 || s[0] != 1 || s[1] != 4 {
			t.Errorf("%s has shape %v, want [1 4]", n, s)
		}
	}
	c0, _ := f32(t, res, "c0")
	in1, _ := f32(t, res, "in1")
	if !equal(c0, in1) {
		t.Error("call 1's input is not call 0's output")
	}
}

// tests/test_iter_edge_cases.py::TestRecurrentInnerIter::test_iter_specific_inner_call
func TestIterEdge_RecurrentInnerIter_IterSpecificInnerCall(t *testing.T) {
	m := recurrentModel()
	res, err := m.Trace(smallInput(), func(tr *nnsight.Tracer) { tr.Module("linear").Call(1).Output().Save("c1") })
	must(t, err)
	if len(res.Names()) == 0 {
		t.Fatal("nothing saved")
	}
	f32(t, res, "c1")
	_, err = m.Trace(smallInput(), func(tr *nnsight.Tracer) { tr.Module("linear").Call(3).Output().Save("c3") })
	if err == nil || !strings.Contains(err.Error(), "3 time") {
		t.Errorf("call 3 of a module called 3 times: want an error saying how many calls exist, got %v", err)
	}
}

// tests/test_iter_edge_cases.py::TestRecurrentInnerIter::test_iter_modifies_specific_inner_call
// Zeroing call 1 makes call 2 see zeros: the output is then linear's bias.
func TestIterEdge_RecurrentInnerIter_IterModifiesSpecificInnerCall(t *testing.T) {
	m := recurrentModel()
	base, err := m.Trace(smallInput(), nil)
	must(t, err)
	mod, err := m.Trace(smallInput(), func(tr *nnsight.Tracer) { tr.Module("linear").Call(1).Output().Set(0.0) })
	must(t, err)
	b, _ := data(t, base.Get("output.0"))
	o, _ := data(t, mod.Get("output.0"))
	if close(b, o, 1e-6) {
		t.Error("zeroing call 1 did not change the output")
	}
	if !close(o, recurrentBias, 1e-6) {
		t.Errorf("output %v, want linear(0) = bias %v", o, recurrentBias)
	}
}

// branched is the peer's Branched. A compiled graph cannot branch on a value, so the branch
// is chosen when the graph is built (here by a field); what the peer checks — a module the
// forward did not call has no output — is the same.
type branched struct{ useB bool }

func (*branched) Children() []module.Child {
	return []module.Child{{Name: "sub_a", Module: module.NewLinear(4, 4)}, {Name: "sub_b", Module: module.NewLinear(4, 4)}}
}
func (b *branched) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	if b.useB {
		return []*module.Node{c.Call1("sub_b", in[0])}
	}
	return []*module.Node{c.Call1("sub_a", in[0])}
}

// tests/test_iter_edge_cases.py::TestBranchedIter::test_unfired_branch_raises_missed_provider
func TestIterEdge_BranchedIter_UnfiredBranchRaisesMissedProvider(t *testing.T) {
	m := nnsight.New(&branched{}, nnsight.WithBackend("go"))
	_, err := m.Trace(smallInput(), func(tr *nnsight.Tracer) {
		tr.Module("sub_a").Output().Save("a")
		tr.Module("sub_b").Output().Save("b")
	})
	if err == nil || !strings.Contains(err.Error(), "sub_b") || !strings.Contains(err.Error(), "not called") {
		t.Errorf("want an error saying sub_b was not called, got %v", err)
	}
}

// tests/test_iter_edge_cases.py::TestBranchedIter::test_fired_branch_works
func TestIterEdge_BranchedIter_FiredBranchWorks(t *testing.T) {
	m := nnsight.New(&branched{}, nnsight.WithBackend("go"))
	res, err := m.Trace(smallInput(), func(tr *nnsight.Tracer) {
		tr.Module("sub_a").Output().Save("out")
		tr.Module("sub_a").Output().Set(func(x *nnsight.Node) *nnsight.Node { return g.MulScalar(x, 2) })
	})
	must(t, err)
	a, _ := f32(t, res, "out")
	o, _ := data(t, res.Get("output.0"))
	for i := range a {
		if o[i] != 2*a[i] {
			t.Fatalf("output %v, want 2 x sub_a's %v", o, a)
		}
	}
}

// tests/test_iter_edge_cases.py::TestTraceNoInputError::test_trace_no_input_raises_value_error
// The peer checks nnsight's wording ("Cannot access ... interleaving"); here: an error that
// says there is nothing to run and how to give an input.
func TestIterEdge_TraceNoInputError_TraceNoInputRaisesValueError(t *testing.T) {
	m := recurrentModel()
	_, err := m.Trace(nil, func(tr *nnsight.Tracer) { tr.Module("linear").Output().Save("x") })
	if err == nil || !strings.Contains(err.Error(), "input") {
		t.Errorf("a trace with no input: want an error about the missing input, got %v", err)
	}
}
