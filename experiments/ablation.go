package experiments

import (
	"fmt"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/gonnsight/gonnsight/nnsight"
)

// Ablation is what replaces an ablated head's output.
type Ablation int

const (
	Zero Ablation = iota // zeros
	Mean                 // the head's mean output over the prompt's positions
)

func (a Ablation) String() string {
	if a == Mean {
		return "mean"
	}
	return "zero"
}

// AblateHeads runs the prompt once per (layer, head), each time with that head's output
// (before c_proj, every position) replaced, and returns the metric as a [layer, head] Map;
// its Clean field is the metric without ablation.
func AblateHeads(m *nnsight.Model, prompt any, metric Metric, how Ablation, opts ...Option) (*Map, error) {
	o := options(opts)
	p, err := newPair(m, prompt, prompt, metric, headsPoint, o)
	if err != nil {
		return nil, err
	}
	L, H, T, E := p.layers, m.Config().NHead, len(p.corrupt), p.width
	d := E / H
	sources := make([]*tensors.Tensor, L)
	for l := range sources {
		src := make([]float32, E)
		if how == Mean {
			act, _, err := nnsight.Float32(p.cleanActs[l])
			if err != nil {
				return nil, err
			}
			for pos := 0; pos < T; pos++ {
				for f := 0; f < E; f++ {
					src[f] += act[pos*E+f] / float32(T)
				}
			}
		}
		sources[l] = tensors.FromFlatDataAndDimensions(src, 1, 1, E)
	}
	var runs []patchRun
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			runs = append(runs, patchRun{layer: l, pos: -1, f0: h * d, f1: (h + 1) * d})
		}
	}
	vals, err := p.sweep(runs, sources, o)
	if err != nil {
		return nil, err
	}
	return &Map{Data: vals, Rows: layerLabels(L), Cols: numberLabels(H), RowTitle: "layer", ColTitle: "head",
		Title: fmt.Sprintf("%s ablation of each head", how), Clean: p.cleanMetric}, nil
}
