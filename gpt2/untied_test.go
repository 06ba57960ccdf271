package gpt2_test

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/experiments"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/safetensors"
)

// copyModel copies the model in src to a new folder: config.json through editConfig (nil:
// as is), the tokenizer files as they are, and every tensor through editTensor, which gets a
// writable copy of its data and returns the tensors to write in its place (nil: as is).
func copyModel(t *testing.T, src string, editConfig func(string) string, editTensor func(name string, shape []int, data []float32) []safetensors.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "vocab.json", "merges.txt"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "config.json" && editConfig != nil {
			data = []byte(editConfig(string(data)))
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []safetensors.Tensor
	for _, name := range f.Names() {
		view, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		data := slices.Clone(view) // the file's bytes are mapped read-only
		info, _ := f.Info(name)
		var edited []safetensors.Tensor
		if editTensor != nil {
			edited = editTensor(name, info.Shape, data)
		}
		if edited == nil {
			edited = []safetensors.Tensor{safetensors.F32(name, info.Shape, data)}
		}
		out = append(out, edited...)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), out, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// untiedCopy is a copy of the tiny model in src with tie_word_embeddings false and
// lm_head.weight = scale × wte.weight (no lm_head.weight when scale is 0).
func untiedCopy(t *testing.T, src string, scale float32) string {
	return copyModel(t, src, func(cfg string) string {
		return strings.Replace(cfg, "{", "{\n  \"tie_word_embeddings\": false,", 1)
	}, func(name string, shape []int, data []float32) []safetensors.Tensor {
		if name != "wte.weight" || scale == 0 {
			return nil
		}
		head := make([]float32, len(data))
		for i, v := range data {
			head[i] = scale * v
		}
		return []safetensors.Tensor{safetensors.F32(name, shape, data), safetensors.F32("lm_head.weight", shape, head)}
	})
}

// A checkpoint with tie_word_embeddings false multiplies by its own lm_head.weight (as
// Hugging Face's GPT2LMHeadModel does), in the forward, the logit lens and the parameter
// count; before, lm_head.weight was ignored and the logits silently came from wte.
func TestUntiedLMHead(t *testing.T) {
	tied := t.TempDir()
	if err := gpt2.MakeTiny(tied, smallTinyOptions); err != nil {
		t.Fatal(err)
	}
	untied := untiedCopy(t, tied, 2) // logits are linear in the unembedding: twice the tied ones
	prompt := nnsight.Tokens{IDs: [][]int{{464, 3290, 318, 287, 262, 1748}}}
	logits := func(dir string, opts ...nnsight.Option) ([]float32, []float32) {
		m := nnsight.LanguageModel(dir, opts...)
		res, err := m.Trace(prompt, func(tr *nnsight.Tracer) {
			h := tr.Module("transformer.h.1").Output()
			tr.Compute("lens", func() *g.Node { return tr.LogitLens(h.Node()) })
		})
		if err != nil {
			t.Fatal(err)
		}
		l, _, err := res.Float32("logits")
		if err != nil {
			t.Fatal(err)
		}
		lens, _, err := res.Float32("lens")
		if err != nil {
			t.Fatal(err)
		}
		return l, lens
	}
	a, aLens := logits(tied)
	b, bLens := logits(untied)
	bT, _ := logits(untied, nnsight.TransposedLMHead()) // lm_head.weight's transpose, made once
	worst := 0.0
	for i := range a {
		worst = max(worst, abs(float64(b[i])-2*float64(a[i])))
		worst = max(worst, abs(float64(bT[i])-2*float64(a[i])))
		worst = max(worst, abs(float64(bLens[i])-2*float64(aLens[i])))
		worst = max(worst, abs(float64(bLens[i])-float64(b[i]))) // the last block's output: the lens is the logits
	}
	if worst > 1e-4 {
		t.Errorf("untied head with lm_head = 2 wte: logits and logit lens off by %g from twice the tied ones", worst)
	}
	// Direct logit attribution reads the same unembedding: its parts add up to the untied
	// model's logit difference (they would add up to half of it with wte in its place).
	dla, err := experiments.DirectLogitAttribution(nnsight.LanguageModel(untied), prompt.IDs[0], 262, 290)
	if err != nil {
		t.Fatal(err)
	}
	sum := dla.Bias
	for c := range dla.Components.Cols {
		sum += float64(dla.Components.At(0, c))
	}
	if abs(sum-dla.Total) > 1e-3*max(1, abs(dla.Total)) {
		t.Errorf("untied DLA: parts add up to %g, the logit difference is %g", sum, dla.Total)
	}
	p, err := gpt2.LoadDir(untied, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Ignored) != 0 || p.Config.Tied() || p.Config.Unembedding() != "lm_head.weight" {
		t.Errorf("untied load: ignored %v, tied %v, unembedding %q", p.Ignored, p.Config.Tied(), p.Config.Unembedding())
	}
	c := p.Config
	c.TieWordEmbeddings = nil
	if got, want := p.Config.NumParams()-c.NumParams(), float64(c.VocabSize*c.NEmbd); got != want {
		t.Errorf("untied head adds %g parameters, want vocab × n_embd = %g", got, want)
	}

	// Untied but no lm_head.weight: an error naming it, not the embedding in its place.
	_, err = gpt2.LoadDir(untiedCopy(t, tied, 0), nil)
	if err == nil || !strings.Contains(err.Error(), "lm_head.weight") {
		t.Errorf("untied config without lm_head.weight: err %v, want one naming lm_head.weight", err)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

var smallTinyOptions = gpt2.TinyOptions{Layers: 2, Heads: 2, Embd: 16, Positions: 32}

// scale_attn_weights false leaves the scores undivided by sqrt(head_dim): the same as the
// default model with its queries (c_attn's first third, weight and bias) multiplied by
// sqrt(head_dim). (scale_attn_by_inverse_layer_idx is checked against the PyTorch reference:
// testdata/gpt2/tiny-c.)
func TestScaleAttnWeightsFalse(t *testing.T) {
	base := t.TempDir()
	if err := gpt2.MakeTiny(base, smallTinyOptions); err != nil {
		t.Fatal(err)
	}
	cfg, err := gpt2.ReadConfig(filepath.Join(base, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	unscaled := copyModel(t, base, func(c string) string {
		return strings.Replace(c, "{", "{\n  \"scale_attn_weights\": false,", 1)
	}, nil)
	root := float32(math.Sqrt(float64(cfg.HeadDim())))
	queries := copyModel(t, base, nil, func(name string, shape []int, data []float32) []safetensors.Tensor {
		switch {
		case strings.HasSuffix(name, "attn.c_attn.weight"): // [in, 3·embd]: q is the first third of each row
			for r := 0; r < shape[0]; r++ {
				for j := 0; j < cfg.NEmbd; j++ {
					data[r*shape[1]+j] *= root
				}
			}
		case strings.HasSuffix(name, "attn.c_attn.bias"):
			for j := 0; j < cfg.NEmbd; j++ {
				data[j] *= root
			}
		}
		return nil
	})
	prompt := nnsight.Tokens{IDs: [][]int{{464, 3290, 318, 287, 262, 1748}}}
	logits := func(dir string) []float32 {
		res, err := nnsight.LanguageModel(dir).Trace(prompt, nil)
		if err != nil {
			t.Fatal(err)
		}
		l, _, err := res.Float32("logits")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b, c := logits(unscaled), logits(queries), logits(base)
	worst, moved := 0.0, 0.0
	for i := range a {
		worst = max(worst, abs(float64(a[i])-float64(b[i])))
		moved = max(moved, abs(float64(a[i])-float64(c[i])))
	}
	if worst > 1e-6 || moved < 1e-5 { // the tiny model attends nearly evenly, so the change is small but far above float noise
		t.Errorf("scale_attn_weights false: off by %g from the default model with sqrt(head_dim)-scaled queries (and %g from the default model itself, which should differ)", worst, moved)
	}
	off := false
	cfg.ScaleAttnWeights = &off
	written := filepath.Join(t.TempDir(), "config.json")
	if err := gpt2.WriteConfig(written, cfg); err != nil {
		t.Fatal(err)
	}
	if back, err := gpt2.ReadConfig(written); err != nil || back.AttentionScale(0) != 1 {
		t.Errorf("WriteConfig then ReadConfig of scale_attn_weights false: scale %v, err %v", back.AttentionScale(0), err)
	}
}
