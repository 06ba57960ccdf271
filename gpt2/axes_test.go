package gpt2

import (
	"testing"

	"github.com/gonnsight/gonnsight/module"
)

// Every module of GPT-2 says what its output's axes are, so Scan never leaves a user to guess.
func TestEveryModuleOutputHasAxisNames(t *testing.T) {
	m := New(Config{VocabSize: 10, NPositions: 8, NEmbd: 8, NLayer: 2, NHead: 2, LayerNormEpsilon: 1e-5, Activation: "gelu_new"})
	for _, p := range module.Paths(m) {
		if module.OutputAxes(m, p) == nil {
			t.Errorf("module %q has no axis names", p)
		}
	}
	for _, p := range []string{"transformer.h.0.attn.query_wrapper", "transformer.h.x", "transformer.hx.0"} {
		if a := module.OutputAxes(m, p); a != nil {
			t.Errorf("%q is not a GPT-2 module but has axes %v", p, a)
		}
	}
}
