package experiments

import (
	"fmt"
	"math"

	"github.com/gonnsight/gonnsight/nnsight"
)

// Attribution is a direct logit attribution: how much each component writes, through the
// final layer norm (its scale taken from the actual final residual, centred as the norm
// centres), onto the direction unembed[correct] − unembed[wrong] at the last position.
// The parts add up: sum(Components) + Bias = Total, the logit difference the model gives;
// and each layer's heads plus its attention bias make its "attn" component.
type Attribution struct {
	// Components is [1, 2 + 2·layers]: embed, pos_embed, then each layer's attn and mlp.
	Components *Map
	// Heads is [layer, head]: each head's output (before the attention's output bias).
	Heads *Map
	// AttnBias is each layer's c_proj bias contribution, [layers].
	AttnBias []float64
	// Bias is the final layer norm's bias along the direction.
	Bias float64
	// Total is logits[-1, correct] − logits[-1, wrong] (or the logit of correct).
	Total float64
}

// DirectLogitAttribution decomposes the prompt's last-position logit difference between
// correct and wrong (wrong < 0: the logit of correct alone) over the embeddings, every
// layer's attention and MLP, and every head.
func DirectLogitAttribution(m *nnsight.Model, prompt any, correct, wrong int) (*Attribution, error) {
	if err := m.Load(); err != nil {
		return nil, err
	}
	x, err := ids(m, prompt, "")
	if err != nil {
		return nil, err
	}
	cfg := m.Config()
	L, H, E, V := cfg.NLayer, cfg.NHead, cfg.NEmbd, cfg.VocabSize
	for _, id := range []int{correct, wrong} {
		if id >= V {
			return nil, fmt.Errorf("experiments: token id %d is outside the vocabulary [0, %d)", id, V)
		}
	}
	if correct < 0 {
		return nil, fmt.Errorf("experiments: the correct token id %d is negative", correct)
	}
	res, err := m.Trace([][]int{x}, func(t *nnsight.Tracer) {
		t.Module("transformer.wte").Output().Save("embed")
		t.Module("transformer.wpe").Output().Save("pos_embed")
		for l := 0; l < L; l++ {
			AttnOut.point(t, l).Save(fmt.Sprint("attn.", l))
			MLPOut.point(t, l).Save(fmt.Sprint("mlp.", l))
			headsPoint(t, l).Save(fmt.Sprint("z.", l))
		}
		ResidPost.point(t, L-1).Save("final")
	})
	if err != nil {
		return nil, err
	}
	last := func(name string) ([]float64, error) {
		d, s, err := res.Float32(name)
		if err != nil {
			return nil, err
		}
		w := s[len(s)-1]
		out := make([]float64, w)
		for i := range out {
			out[i] = float64(d[len(d)-w+i])
		}
		return out, nil
	}
	weight := func(name string) ([]float32, error) {
		w, ok := m.Weights()[name]
		if !ok {
			return nil, fmt.Errorf("experiments: the model has no weight %q", name)
		}
		d, _, err := nnsight.Float32(w)
		return d, err
	}
	unembed, err := weight(cfg.Unembedding())
	if err != nil {
		return nil, err
	}
	lnW, err := weight("transformer.ln_f.weight")
	if err != nil {
		return nil, err
	}
	lnB, err := weight("transformer.ln_f.bias")
	if err != nil {
		return nil, err
	}
	// dir = ln_f.weight ⊙ (unembed[correct] − unembed[wrong]).
	dir := make([]float64, E)
	a := &Attribution{}
	for e := 0; e < E; e++ {
		d := float64(unembed[correct*E+e])
		if wrong >= 0 {
			d -= float64(unembed[wrong*E+e])
		}
		dir[e] = float64(lnW[e]) * d
		a.Bias += float64(lnB[e]) * d
	}
	final, err := last("final")
	if err != nil {
		return nil, err
	}
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	mu := mean(final)
	variance := 0.0
	for _, x := range final {
		variance += (x - mu) * (x - mu)
	}
	scale := math.Sqrt(variance/float64(E) + cfg.LayerNormEpsilon)
	// project is a component's contribution: centred, scaled by the final norm, on dir.
	project := func(v []float64) float64 {
		mv := mean(v)
		s := 0.0
		for e, x := range v {
			s += (x - mv) / scale * dir[e]
		}
		return s
	}
	var comps []float32
	labels := []string{"embed", "pos_embed"}
	for _, name := range []string{"embed", "pos_embed"} {
		v, err := last(name)
		if err != nil {
			return nil, err
		}
		comps = append(comps, float32(project(v)))
	}
	d := E / H
	heads := make([]float32, L*H)
	for l := 0; l < L; l++ {
		for _, kind := range []string{"attn", "mlp"} {
			v, err := last(fmt.Sprint(kind, ".", l))
			if err != nil {
				return nil, err
			}
			comps = append(comps, float32(project(v)))
			labels = append(labels, fmt.Sprint(l, " ", kind))
		}
		z, err := last(fmt.Sprint("z.", l))
		if err != nil {
			return nil, err
		}
		wo, err := weight(fmt.Sprintf("transformer.h.%d.attn.c_proj.weight", l)) // [in, out]
		if err != nil {
			return nil, err
		}
		bo, err := weight(fmt.Sprintf("transformer.h.%d.attn.c_proj.bias", l))
		if err != nil {
			return nil, err
		}
		out := make([]float64, E)
		for h := 0; h < H; h++ {
			clear(out)
			for i := h * d; i < (h+1)*d; i++ {
				for e := 0; e < E; e++ {
					out[e] += z[i] * float64(wo[i*E+e])
				}
			}
			heads[l*H+h] = float32(project(out))
		}
		for e := 0; e < E; e++ {
			out[e] = float64(bo[e])
		}
		a.AttnBias = append(a.AttnBias, project(out))
	}
	logits := res.Logits()
	ld, _, err := nnsight.Float32(logits)
	if err != nil {
		return nil, err
	}
	row := ld[len(ld)-V:]
	a.Total = float64(row[correct])
	what := fmt.Sprintf("logit of #%d", correct)
	if wrong >= 0 {
		a.Total -= float64(row[wrong])
		what = fmt.Sprintf("logit #%d − logit #%d", correct, wrong)
	}
	if tok := m.Tokenizer(); tok != nil {
		what = fmt.Sprintf("logit %q", tok.TokenString(correct))
		if wrong >= 0 {
			what += fmt.Sprintf(" − logit %q", tok.TokenString(wrong))
		}
	}
	a.Components = &Map{Data: comps, Rows: []string{"last position"}, Cols: labels, RowTitle: "", ColTitle: "component",
		Title: "direct logit attribution: " + what, Value: what}
	a.Heads = &Map{Data: heads, Rows: layerLabels(L), Cols: numberLabels(H), RowTitle: "layer", ColTitle: "head",
		Title: "direct logit attribution per head: " + what, Value: what}
	return a, nil
}
