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

// TestGenerateSamplingHonoursTemperatureAndTopK checks what the options do, not only that a
// seed repeats: top-k 1 and a near-zero temperature are greedy, every sampled token is among
// its step's top k, and the seed changes what is drawn.
func TestGenerateSamplingHonoursTemperatureAndTopK(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	p0 := fx.Ints(t, "p0")
	const n = 6
	gen := func(fn func(*nnsight.Tracer), opts ...nnsight.GenOption) *nnsight.Generation {
		t.Helper()
		g, err := m.Generate(p0, n, fn, append(opts, nnsight.IgnoreEOS())...)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	greedy := fmt.Sprint(gen(nil).NewTokens[0])
	if got := fmt.Sprint(gen(nil, nnsight.Temperature(1), nnsight.TopK(1), nnsight.Seed(7)).NewTokens[0]); got != greedy {
		t.Errorf("top-k 1 sampled %s, want the greedy %s", got, greedy)
	}
	if got := fmt.Sprint(gen(nil, nnsight.Temperature(1e-4), nnsight.Seed(7)).NewTokens[0]); got != greedy {
		t.Errorf("temperature 1e-4 sampled %s, want the greedy %s", got, greedy)
	}
	const k = 20
	distinct := map[string]bool{}
	for seed := int64(1); seed <= 4; seed++ {
		s := gen(func(tr *nnsight.Tracer) { tr.Logits().At(1, -1, 0).Save("last") },
			nnsight.Temperature(1), nnsight.TopK(k), nnsight.Seed(seed))
		distinct[fmt.Sprint(s.NewTokens[0])] = true
		steps := s.Saved.List("last")
		if len(steps) != n {
			t.Fatalf("saved %d steps, want %d", len(steps), n)
		}
		for i, st := range steps {
			logits, _, _ := nnsight.Float32(st)
			tok := s.NewTokens[0][i]
			higher := 0 // tokens with a larger logit than the one drawn
			for _, x := range logits {
				if x > logits[tok] {
					higher++
				}
			}
			if higher >= k {
				t.Errorf("seed %d, step %d: token %d has %d higher logits, outside the top %d", seed, i, tok, higher, k)
			}
		}
	}
	if len(distinct) < 2 {
		t.Errorf("four seeds drew the same tokens: %v", distinct)
	}
}
