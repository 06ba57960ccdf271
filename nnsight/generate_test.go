package nnsight_test

import (
	"fmt"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/nnsight"
)

func TestGenerateMatchesReference(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			m, fx := loadTiny(t, name)
			p0 := fx.Ints(t, "p0")
			n := fx.Int(t, "n_new")
			ablate := func(every bool, step int) func(tr *nnsight.Tracer) {
				return func(tr *nnsight.Tracer) {
					if every || tr.Step() == step {
						tr.Module("transformer.h.0.mlp").Output().Set(func(x *g.Node) *g.Node { return g.ZerosLike(x) })
					}
				}
			}
			cases := []struct {
				name string
				key  string
				fn   func(*nnsight.Tracer)
				opts []nnsight.GenOption
			}{
				{"greedy, KV cache", "greedy", nil, nil},
				{"greedy, no cache", "greedy", nil, []nnsight.GenOption{nnsight.NoCache()}},
				{"ablate every step, KV cache", "ablate_every_step", ablate(true, 0), nil},
				{"ablate every step, no cache", "ablate_every_step", ablate(true, 0), []nnsight.GenOption{nnsight.NoCache()}},
				// The reference recomputes the prefix, so a one-step intervention acts on every
				// position of that step: the no-cache mode has the same semantics.
				{"ablate step 2, no cache", "ablate_step2", ablate(false, 2), []nnsight.GenOption{nnsight.NoCache()}},
			}
			for _, c := range cases {
				gen, err := m.Generate(p0, n, c.fn, c.opts...)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				want := fx.Ints(t, "generate", c.key, "tokens")
				if fmt.Sprint(gen.Tokens[0]) != fmt.Sprint(want) {
					t.Errorf("%s: tokens %v, reference %v", c.name, gen.Tokens[0], want)
				}
			}
		})
	}
}

func TestGenerateSavesPerStep(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	p0 := fx.Ints(t, "p0")
	gen, err := m.Generate(p0, 4, func(tr *nnsight.Tracer) {
		tr.Logits().At(1, -1, 0).Save("last")
	}, nnsight.IgnoreEOS())
	if err != nil {
		t.Fatal(err)
	}
	steps := gen.Saved.List("last")
	if len(steps) != 4 {
		t.Fatalf("saved %d steps, want 4", len(steps))
	}
	want, _ := fx.Tensor(t, "generate/greedy_step_logits")
	V := m.Config().VocabSize
	for i, s := range steps {
		d, _, _ := nnsight.Float32(s)
		fx.CompareSlice(t, fmt.Sprintf("generate/greedy_step_logits[%d]", i), d, want[i*V:(i+1)*V], 1e-4)
	}
}

func TestGenerateSamplingIsSeeded(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	a, err := m.Generate(p0, 6, nil, nnsight.Temperature(1.0), nnsight.TopK(20), nnsight.Seed(7), nnsight.IgnoreEOS())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Generate(p0, 6, nil, nnsight.Temperature(1.0), nnsight.TopK(20), nnsight.Seed(7), nnsight.IgnoreEOS())
	if fmt.Sprint(a.Tokens) != fmt.Sprint(b.Tokens) {
		t.Errorf("same seed, different tokens: %v vs %v", a.Tokens, b.Tokens)
	}
	if _, err := m.Generate(p0, 40, nil); err == nil {
		t.Error("a generation past n_positions must fail")
	}
}
