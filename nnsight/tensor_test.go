package nnsight_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/tensor"
)

func axesAre(t *testing.T, what string, x *tensor.Tensor, want ...string) {
	t.Helper()
	if !slices.Equal(x.Axes(), want) {
		t.Errorf("%s: axes %v, want %v", what, x.Axes(), want)
	}
}

func TestResultTensorCarriesValuesAndAxisNames(t *testing.T) {
	m := tinyRandom(t)
	res, err := m.Trace([]int{1, 2, 3}, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().Save("mlp")
		tr.Module("transformer.h.1").Output().At(1, -1, 0).Save("last")
		tr.Module("transformer.h.0.attn.attn_weights").Output().Save("w")
		tr.Module("transformer.h.0.attn").Input().Save("in")
		h := tr.Module("transformer.h.1").Output()
		tr.Compute("lens", func() *g.Node { return tr.LogitLens(h.Node()) })
	})
	if err != nil {
		t.Fatal(err)
	}
	logits := res.Tensor("logits")
	data, shape, _ := res.Float32("logits")
	if !slices.Equal(logits.Shape(), shape) || !slices.Equal(logits.Data(), data) {
		t.Fatalf("Tensor(logits) %v differs from Float32's %v", logits.Shape(), shape)
	}
	axesAre(t, "logits", logits, "batch", "pos", "vocab")
	axesAre(t, "mlp output", res.Tensor("mlp"), "batch", "pos", "embd")
	axesAre(t, "a narrowed output", res.Tensor("last"), "batch", "pos", "embd")
	axesAre(t, "attn_weights", res.Tensor("w"), "batch", "head", "query_pos", "key_pos")
	axesAre(t, "a module input (the model does not name inputs)", res.Tensor("in"))
	axesAre(t, "a computed value", res.Tensor("lens"))
	// The names work in the operations: greedy tokens by axis name.
	if got := logits.ArgMax(logits.Axis("vocab")).Shape(); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("ArgMax over vocab: shape %v", got)
	}

	defer func() {
		r := recover()
		e, ok := r.(error)
		if !ok || !errors.Is(e, nnsight.ErrUnknownPath) || !strings.Contains(e.Error(), "\"nope\"") || !strings.Contains(e.Error(), "logits, mlp, last") {
			t.Errorf("Tensor of an unknown name panicked with %v; want ErrUnknownPath listing the saved names", r)
		}
	}()
	res.Tensor("nope")
}

func TestCacheTensorResolvesSpellings(t *testing.T) {
	m := tinyRandom(t)
	c, err := m.RunWithCache([]int{1, 2, 3}, "transformer.h.*")
	if err != nil {
		t.Fatal(err)
	}
	last := c.Tensor("transformer.h.-1")
	want, _, _ := c.Float32("transformer.h.1")
	if !slices.Equal(last.Data(), want) {
		t.Error("Cache.Tensor(transformer.h.-1) is not layer 1's output")
	}
	axesAre(t, "cached block output", last, "batch", "pos", "embd")
	resid := tensor.Stack(c.Tensors(c.Paths...), 0)
	if got := resid.Shape(); !slices.Equal(got, []int{2, 1, 3, 8}) {
		t.Errorf("stacked residual stream %v", got)
	}
	flat, dims, _ := c.Stack(c.Paths...)
	if !slices.Equal(resid.Data(), flat) || !slices.Equal(resid.Shape(), dims) {
		t.Error("tensor.Stack of Cache.Tensors differs from Cache.Stack")
	}
	defer func() {
		r := recover()
		if e, ok := r.(error); !ok || !strings.Contains(e.Error(), "transformer.h.0, transformer.h.1") {
			t.Errorf("Cache.Tensor of an uncached path panicked with %v; want the cached paths listed", r)
		}
	}()
	c.Tensor("transformer.ln_f")
}

func TestGenerateTensorList(t *testing.T) {
	m := tinyRandom(t)
	gen, err := m.Generate([]int{1, 2}, 3, func(tr *nnsight.Tracer) {
		tr.Logits().At(1, -1, 0).Save("next")
	})
	if err != nil {
		t.Fatal(err)
	}
	steps := gen.Saved.TensorList("next")
	if len(steps) != 3 {
		t.Fatalf("%d steps", len(steps))
	}
	axesAre(t, "a step's logits", steps[0], "batch", "pos", "vocab")
	if got := tensor.Stack(steps, 0).Shape(); !slices.Equal(got, []int{3, 1, 1, 50}) {
		t.Errorf("stacked steps %v", got)
	}
}

// A tensor.Tensor works wherever a trace takes a value: Set, and Input inside a function.
func TestTensorAsTraceValue(t *testing.T) {
	m := tinyRandom(t)
	ids := []int{1, 2, 3}
	zeroed, err := m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().Set(func(x *g.Node) *g.Node { return g.ZerosLike(x) })
	})
	if err != nil {
		t.Fatal(err)
	}
	viaSet, err := m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().Set(tensor.Zeros(1, 3, 8))
	})
	if err != nil {
		t.Fatal(err)
	}
	viaInput, err := m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().Set(func(x *g.Node) *g.Node {
			return g.Mul(x, tr.Input(tensor.Zeros(1, 3, 8)))
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err := m.Trace(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := zeroed.Tensor("logits")
	if base.Tensor("logits").Sub(want).Abs().Max().Item() == 0 {
		t.Fatal("zeroing the MLP changed nothing: the test cannot tell")
	}
	for name, r := range map[string]*nnsight.Result{"Set": viaSet, "Input": viaInput} {
		if d := r.Tensor("logits").Sub(want).Abs().Max().Item(); d > 1e-6 {
			t.Errorf("%s with a tensor.Tensor: logits differ by %g from zeroing with a function", name, d)
		}
	}
}
