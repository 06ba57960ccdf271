package train

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gonnsight/gonnsight/internal/engine"
)

// BenchmarkStep times one training step of the default model's shape (2 layers here, to
// keep it short): GOEXPERIMENT=simd go test ./internal/train -run - -bench Step.
func BenchmarkStep(b *testing.B) {
	eng, err := engine.Open(benchBackend())
	if err != nil {
		b.Fatal(err)
	}
	o := Defaults()
	o.Layers = 2
	cfg := o.modelConfig(o.Vocab, o.Vocab-1)
	p, err := newPrograms(eng.Backend, cfg, Hyper{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1, Clip: 1}, o.Batch, 8)
	if err != nil {
		b.Fatal(err)
	}
	st := initState(cfg, p.params, 1, o)
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int32, o.Batch*(o.Ctx+1))
	for i := range ids {
		ids[i] = int32(rng.IntN(o.Vocab))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := p.run(st, ids, Mix{Batch: o.Batch, Ctx: o.Ctx}, 1e-3, i+1); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBackend() string {
	if b := os.Getenv("GOMLX_BACKEND"); b != "" {
		return b
	}
	return "go:ops_sequential"
}
