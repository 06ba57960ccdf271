package nnsight_test

import (
	"testing"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/nnsight"
)

// BenchmarkGenerateTinyCached is the per-step overhead of the core (building the graph,
// fingerprinting it, feeding the inputs and the cache) more than compute: a tiny GPT-2
// generating 16 tokens with its KV cache, one b.N iteration per generation.
func BenchmarkGenerateTinyCached(b *testing.B) {
	cfg := gpt2.Config{VocabSize: 50, NPositions: 64, NEmbd: 16, NLayer: 4, NHead: 2, LayerNormEpsilon: 1e-5, Activation: "gelu_new", EOSTokenID: -1}
	m := nnsight.RandomLanguageModel(cfg, 1, nnsight.WithBackend("go"))
	if _, err := m.Generate([]int{1, 2, 3}, 16, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := m.Generate([]int{1, 2, 3}, 16, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTraceTiny is one trace with a save on a tiny GPT-2: the core's per-trace overhead.
func BenchmarkTraceTiny(b *testing.B) {
	cfg := gpt2.Config{VocabSize: 50, NPositions: 64, NEmbd: 16, NLayer: 4, NHead: 2, LayerNormEpsilon: 1e-5, Activation: "gelu_new", EOSTokenID: -1}
	m := nnsight.RandomLanguageModel(cfg, 1, nnsight.WithBackend("go"))
	fn := func(t *nnsight.Tracer) { t.Module("transformer.h.1.mlp").Output().Save("mlp") }
	if _, err := m.Trace([]int{1, 2, 3, 4, 5, 6, 7, 8}, fn); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := m.Trace([]int{1, 2, 3, 4, 5, 6, 7, 8}, fn); err != nil {
			b.Fatal(err)
		}
	}
}
