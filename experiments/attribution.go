package experiments

import (
	"fmt"

	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
)

// AttributionPatch approximates Patch(m, c, ...) to first order with one forward and one
// backward pass on the corrupted prompt (attribution patching): at each layer and position,
// the metric's gradient · (clean − corrupted value), summed over features, as a
// [layer, pos] Map. Its Clean and Corrupt fields are the two runs' metrics, so the map
// estimates patched − corrupted.
func AttributionPatch(m *nnsight.Model, c Component, clean, corrupt any, metric Metric, opts ...Option) (*Map, error) {
	p, err := newPair(m, clean, corrupt, metric, func(t *nnsight.Tracer, l int) *nnsight.Proxy { return c.point(t, l) }, options(opts))
	if err != nil {
		return nil, err
	}
	T := len(p.corrupt)
	vals, err := p.attribution(p.layers*T, func(l, pos, f int) int { return l*T + pos })
	if err != nil {
		return nil, err
	}
	return &Map{Data: vals, Rows: layerLabels(p.layers), Cols: p.tokens, RowTitle: "layer", ColTitle: "position",
		Title: fmt.Sprintf("attribution patching: %s, clean − corrupted, first order", c), Clean: p.cleanMetric,
		Corrupt: p.corruptMetric, baselines: true}, nil
}

// AttributionPatchHeads is AttributionPatch for each head's output (every position), as a
// [layer, head] Map.
func AttributionPatchHeads(m *nnsight.Model, clean, corrupt any, metric Metric, opts ...Option) (*Map, error) {
	p, err := newPair(m, clean, corrupt, metric, headsPoint, options(opts))
	if err != nil {
		return nil, err
	}
	H := m.Config().NHead
	d := p.width / H
	vals, err := p.attribution(p.layers*H, func(l, pos, f int) int { return l*H + f/d })
	if err != nil {
		return nil, err
	}
	return &Map{Data: vals, Rows: layerLabels(p.layers), Cols: numberLabels(H), RowTitle: "layer", ColTitle: "head",
		Title: "attribution patching: head outputs, clean − corrupted, first order", Clean: p.cleanMetric,
		Corrupt: p.corruptMetric, baselines: true}, nil
}

// attribution sums gradient · (clean − corrupted) into n cells, cell(layer, pos, feature).
func (p *pair) attribution(n int, cell func(l, pos, f int) int) ([]float32, error) {
	res, err := p.m.Trace([][]int{p.corrupt}, func(t *nnsight.Tracer) {
		metric := p.o.metric(t, p.metric)
		t.Backward(func() *ops.Node { return ops.ReduceAllSum(metric()) }, func() {
			for l := 0; l < p.layers; l++ {
				p.point(t, l).Grad().Save(fmt.Sprint("grad.", l))
			}
		})
	})
	if err != nil {
		return nil, err
	}
	T, E := len(p.corrupt), p.width
	out := make([]float64, n)
	for l := 0; l < p.layers; l++ {
		g, _, err := res.Float32(fmt.Sprint("grad.", l))
		if err != nil {
			return nil, err
		}
		cl, _, _ := nnsight.Float32(p.cleanActs[l])
		co, _, _ := nnsight.Float32(p.corruptActs[l])
		for pos := 0; pos < T; pos++ {
			for f := 0; f < E; f++ {
				i := pos*E + f
				out[cell(l, pos, f)] += float64(g[i]) * (float64(cl[i]) - float64(co[i]))
			}
		}
	}
	vals := make([]float32, len(out))
	for i, v := range out {
		vals[i] = float32(v)
	}
	return vals, nil
}
