package edit_test

import (
	"math"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/nnsight"
)

func growLastAxis(x *g.Node) *g.Node { return g.Concatenate([]*g.Node{x, x}, -1) }

// tinyGPT2 is a small random GPT-2 (no tokenizer: inputs are token ids).
func tinyGPT2(t testing.TB, opts ...nnsight.Option) *nnsight.Model {
	t.Helper()
	cfg := gpt2.Config{VocabSize: 50, NPositions: 16, NEmbd: 8, NLayer: 2, NHead: 2, LayerNormEpsilon: 1e-5, Activation: "gelu_new"}
	m := nnsight.RandomLanguageModel(cfg, 7, append([]nnsight.Option{nnsight.WithBackend("go")}, opts...)...)
	if err := m.Load(); err != nil {
		t.Fatal(err)
	}
	return m
}

var ids = []int{3, 1, 4, 1, 5}

// logits runs the model on ids with fn's interventions and returns the logits.
func logits(t testing.TB, m *nnsight.Model, fn func(tr *nnsight.Tracer)) []float32 {
	t.Helper()
	res, err := m.Trace(ids, fn)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := nnsight.Float32(res.Logits())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sameValues fails unless a and b agree to within tol (relative to their scale).
func sameValues(t testing.TB, what string, a, b []float32, tol float64) {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%s: lengths %d and %d", what, len(a), len(b))
	}
	scale := 1 + nnsight.MaxAbs(b)
	for i := range a {
		// Written so that a NaN on either side fails.
		if !(math.Abs(float64(a[i])-float64(b[i])) <= tol*scale) {
			t.Fatalf("%s: [%d] = %v, want %v (max difference %g)", what, i, a[i], b[i], nnsight.MaxAbsDiff(a, b))
		}
	}
}
