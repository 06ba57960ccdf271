package experiments_test

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/gonnsight/gonnsight/experiments"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
)

// The residual-stream sweep of issue 12 on a GPT-2-small-sized model (random weights,
// 12 layers × 9 positions), batched against one trace per patch, side by side:
//
//	GOEXPERIMENT=simd go test -run XXX -bench PatchResidual -benchtime 3x ./experiments
func BenchmarkPatchResidual(b *testing.B) {
	m := nnsight.RandomLanguageModel(gpt2.Small(), 1, nnsight.WithBackend("go"))
	if err := m.Load(); err != nil {
		b.Fatal(err)
	}
	clean := []int{464, 36, 733, 417, 10693, 318, 287, 262, 1748}
	corrupt := []int{464, 36, 733, 417, 10693, 318, 287, 262, 1748}
	corrupt[3] = 5000
	metric := experiments.LogitDiff(6342, 10598)
	b.Run("batched", func(b *testing.B) {
		for b.Loop() {
			if _, err := experiments.PatchResidual(m, clean, corrupt, metric); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batched-all-positions", func(b *testing.B) {
		for b.Loop() {
			if _, err := experiments.PatchResidual(m, clean, corrupt, metric, experiments.AllPositions()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-trace-per-patch", func(b *testing.B) {
		for b.Loop() {
			oneByOne(b, m, clean, corrupt, metric)
		}
	})
}

// oneByOne is the sweep as a notebook writes it without the experiments package: a clean
// trace, then one trace per (layer, position) setting that position from the clean run.
func oneByOne(b *testing.B, m *nnsight.Model, clean, corrupt []int, metric experiments.Metric) []float32 {
	L := m.Config().NLayer
	res, err := m.Trace(clean, func(t *nnsight.Tracer) {
		for l := range L {
			t.Module(fmt.Sprintf("transformer.h.%d", l)).Input().Save(fmt.Sprint(l))
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	var out []float32
	for l := range L {
		d, s, _ := res.Float32(fmt.Sprint(l))
		E := s[2]
		for p := range len(clean) {
			patch := tensors.FromFlatDataAndDimensions(append([]float32(nil), d[p*E:(p+1)*E]...), 1, 1, E)
			r, err := m.Trace(corrupt, func(t *nnsight.Tracer) {
				t.Module(fmt.Sprintf("transformer.h.%d", l)).Input().At(1, p, p+1).Set(patch)
				lg := t.Logits()
				t.Compute("metric", func() *ops.Node { return metric(lg.Node()) })
			})
			if err != nil {
				b.Fatal(err)
			}
			v, _, _ := r.Float32("metric")
			out = append(out, v...)
		}
	}
	return out
}
