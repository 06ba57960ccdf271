package experiments

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/gonnsight/gonnsight/display"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
)

// PatchResidual runs the corrupted prompt once per (layer, position), each time with the
// block input at that position taken from the clean run (TransformerLens's
// get_act_patch_resid_pre), and returns the metric as a [layer, pos] Map.
func PatchResidual(m *nnsight.Model, clean, corrupt any, metric Metric, opts ...Option) (*Map, error) {
	return Patch(m, ResidPre, clean, corrupt, metric, opts...)
}

// Patch is PatchResidual for any component: the metric when component c of layer l at
// position p comes from the clean run, as a [layer, pos] Map.
func Patch(m *nnsight.Model, c Component, clean, corrupt any, metric Metric, opts ...Option) (*Map, error) {
	o := options(opts)
	p, err := newPair(m, clean, corrupt, metric, func(t *nnsight.Tracer, l int) *nnsight.Proxy { return c.point(t, l) }, o)
	if err != nil {
		return nil, err
	}
	L, T := p.layers, len(p.corrupt)
	var runs []patchRun
	for l := 0; l < L; l++ {
		for pos := 0; pos < T; pos++ {
			runs = append(runs, patchRun{layer: l, pos: pos, f0: 0, f1: p.width})
		}
	}
	vals, err := p.sweep(runs, p.cleanActs, o)
	if err != nil {
		return nil, err
	}
	return &Map{Data: vals, Rows: layerLabels(L), Cols: p.tokens, RowTitle: "layer", ColTitle: "position",
		Title: fmt.Sprintf("activation patching: %s, clean → corrupted", c), Clean: p.cleanMetric, Corrupt: p.corruptMetric,
		baselines: true}, nil
}

// PatchHeads runs the corrupted prompt once per (layer, head), each time with that head's
// output (before c_proj, every position) taken from the clean run, and returns the metric
// as a [layer, head] Map (TransformerLens's get_act_patch_attn_head_out_all_pos).
func PatchHeads(m *nnsight.Model, clean, corrupt any, metric Metric, opts ...Option) (*Map, error) {
	o := options(opts)
	p, err := newPair(m, clean, corrupt, metric, headsPoint, o)
	if err != nil {
		return nil, err
	}
	L, H := p.layers, m.Config().NHead
	d := p.width / H
	var runs []patchRun
	for l := 0; l < L; l++ {
		for h := 0; h < H; h++ {
			runs = append(runs, patchRun{layer: l, pos: -1, f0: h * d, f1: (h + 1) * d})
		}
	}
	vals, err := p.sweep(runs, p.cleanActs, o)
	if err != nil {
		return nil, err
	}
	return &Map{Data: vals, Rows: layerLabels(L), Cols: numberLabels(H), RowTitle: "layer", ColTitle: "head",
		Title: "activation patching: head outputs, clean → corrupted", Clean: p.cleanMetric, Corrupt: p.corruptMetric,
		baselines: true}, nil
}

// pair is a clean and a corrupted prompt of one length, with the metric on both and the
// clean run's values at one point of every layer.
type pair struct {
	m                          *nnsight.Model
	clean, corrupt             []int
	tokens                     []string
	metric                     Metric
	point                      func(t *nnsight.Tracer, l int) *nnsight.Proxy
	o                          Options
	layers, width              int
	cleanActs, corruptActs     []*tensors.Tensor // per layer [1, pos, width]
	cleanMetric, corruptMetric float64
}

func newPair(m *nnsight.Model, clean, corrupt any, metric Metric, point func(t *nnsight.Tracer, l int) *nnsight.Proxy, o Options) (*pair, error) {
	if metric == nil {
		return nil, fmt.Errorf("experiments: no metric (e.g. experiments.LogitDiff(correct, wrong))")
	}
	if err := m.Load(); err != nil {
		return nil, err
	}
	c, err := ids(m, clean, "clean")
	if err != nil {
		return nil, err
	}
	k, err := ids(m, corrupt, "corrupted")
	if err != nil {
		return nil, err
	}
	if len(c) != len(k) {
		return nil, fmt.Errorf("experiments: the clean prompt has %d tokens %s but the corrupted one %d %s; patching needs prompts of one length",
			len(c), quoteTokens(m, c), len(k), quoteTokens(m, k))
	}
	p := &pair{m: m, clean: c, corrupt: k, tokens: tokenLabels(m, k), metric: metric, point: point, layers: m.Config().NLayer, o: o}
	res, err := m.Trace([][]int{c, k}, func(t *nnsight.Tracer) {
		for l := 0; l < p.layers; l++ {
			point(t, l).Save(fmt.Sprint("act.", l))
		}
		t.Compute("metric", o.metric(t, metric))
	})
	if err != nil {
		return nil, err
	}
	met, err := floats(res, "metric", 2)
	if err != nil {
		return nil, err
	}
	p.cleanMetric, p.corruptMetric = float64(met[0]), float64(met[1])
	for l := 0; l < p.layers; l++ {
		d, s, err := res.Float32(fmt.Sprint("act.", l))
		if err != nil {
			return nil, err
		}
		n := len(d) / 2
		p.width = s[len(s)-1]
		p.cleanActs = append(p.cleanActs, tensors.FromFlatDataAndDimensions(d[:n:n], 1, s[1], s[2]))
		p.corruptActs = append(p.corruptActs, tensors.FromFlatDataAndDimensions(d[n:], 1, s[1], s[2]))
	}
	return p, nil
}

// patchRun is one patched forward: at layer, position pos (-1: all) and features [f0, f1),
// the value comes from the source.
type patchRun struct {
	layer, pos, f0, f1 int
}

// sweep runs the corrupted prompt once per run, each with its patch from sources (per layer
// [1, pos, width] or [1, 1, width]), and returns the metric per run. Runs go in chunks of
// equal size (the last one filled with unpatched rows), so every chunk runs one compiled
// program.
func (p *pair) sweep(runs []patchRun, sources []*tensors.Tensor, o Options) ([]float32, error) {
	T := len(p.corrupt)
	B := o.Rows
	if B <= 0 {
		B = max(1, 2048/T)
	}
	B = min(B, len(runs))
	out := make([]float32, 0, len(runs))
	batch := make([][]int, B)
	for i := range batch {
		batch[i] = p.corrupt
	}
	for start := 0; start < len(runs); start += B {
		chunk := runs[start:min(start+B, len(runs))]
		masks := make([][]bool, p.layers)
		for l := range masks {
			masks[l] = make([]bool, B*T*p.width)
		}
		for b, r := range chunk {
			for pos := 0; pos < T; pos++ {
				if r.pos >= 0 && pos != r.pos {
					continue
				}
				row := masks[r.layer][(b*T+pos)*p.width:]
				for f := r.f0; f < r.f1; f++ {
					row[f] = true
				}
			}
		}
		res, err := p.m.Trace(batch, func(t *nnsight.Tracer) {
			for l := 0; l < p.layers; l++ {
				src, mask := sources[l], tensors.FromFlatDataAndDimensions(masks[l], B, T, p.width)
				p.point(t, l).Set(func(x *ops.Node) *ops.Node {
					dims := x.Shape().Dimensions
					return ops.Where(t.Input(mask), ops.BroadcastToDims(t.Input(src), dims...), x)
				})
			}
			t.Compute("metric", p.o.metric(t, p.metric))
		})
		if err != nil {
			return nil, err
		}
		met, err := floats(res, "metric", B)
		if err != nil {
			return nil, err
		}
		out = append(out, met[:len(chunk)]...)
	}
	return out, nil
}

// floats reads a saved metric of n rows.
func floats(res *nnsight.Result, name string, n int) ([]float32, error) {
	d, s, err := res.Float32(name)
	if err != nil {
		return nil, err
	}
	if len(d) != n {
		return nil, fmt.Errorf("experiments: the metric gave shape %v; it must give one number per row ([%d])", s, n)
	}
	return d, nil
}

func ids(m *nnsight.Model, prompt any, what string) ([]int, error) {
	label := "the prompt" // or "the clean prompt", "the corrupted prompt"
	if what != "" {
		label = "the " + what + " prompt"
	}
	switch v := prompt.(type) {
	case string:
		tok := m.Tokenizer()
		if tok == nil {
			return nil, fmt.Errorf("experiments: %s has no tokenizer; give %s as token ids ([]int)", m.Source(), label)
		}
		ids := tok.Encode(v)
		if len(ids) == 0 {
			return nil, fmt.Errorf("experiments: %s %q has no tokens", label, v)
		}
		return ids, nil
	case []int:
		if len(v) == 0 {
			return nil, fmt.Errorf("experiments: %s has no tokens", label)
		}
		return v, nil
	}
	return nil, fmt.Errorf("experiments: %s is a %T; give a string or token ids ([]int)", label, prompt)
}

func tokenLabels(m *nnsight.Model, ids []int) []string {
	out := make([]string, len(ids))
	tok := m.Tokenizer()
	for i, id := range ids {
		if tok != nil {
			out[i] = fmt.Sprintf("%d %s", i, display.VisibleToken(tok.TokenString(id)))
		} else {
			out[i] = fmt.Sprintf("%d #%d", i, id)
		}
	}
	return out
}

func quoteTokens(m *nnsight.Model, ids []int) string {
	labels := tokenLabels(m, ids)
	return "[" + strings.Join(labels, ", ") + "]"
}

func layerLabels(n int) []string { return numberLabels(n) }

func numberLabels(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}
