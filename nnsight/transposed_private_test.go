package nnsight

import (
	"testing"

	"github.com/gonnsight/gonnsight/gpt2"
)

// TransposedLMHead: lm_head reads a transposed copy of the tied embedding that the model
// side (not the engine) makes once and keeps; the logits agree with the default layout.
func TestTransposedLMHeadFedFromTheModelSide(t *testing.T) {
	cfg := gpt2.Config{VocabSize: 50, NPositions: 16, NEmbd: 8, NLayer: 1, NHead: 2, LayerNormEpsilon: 1e-5, Activation: "gelu_new"}
	plain := RandomLanguageModel(cfg, 3, WithBackend("go"))
	tm := RandomLanguageModel(cfg, 3, WithBackend("go"), TransposedLMHead())
	ids := []int{1, 2, 3, 4}
	want, err := plain.Trace(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		got, err := tm.Trace(ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, _, _ := Float32(want.Logits())
		b, _, _ := Float32(got.Logits())
		if d := MaxAbsDiff(a, b); d > 1e-5 {
			t.Fatalf("trace %d: logits with the transposed lm_head differ by %g", i, d)
		}
	}
	if transposes.Len() == 0 {
		t.Error("no transpose was kept: lm_head did not use the transposed parameter")
	}
	// One kept copy per weight, shared by the traces: another trace adds none.
	n := transposes.Len()
	if _, err := tm.Trace(ids, nil); err != nil {
		t.Fatal(err)
	}
	if transposes.Len() != n {
		t.Errorf("kept transposes went from %d to %d on a repeated trace", n, transposes.Len())
	}
}
