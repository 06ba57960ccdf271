// Package gpt2 is GPT-2 (Hugging Face's GPT2LMHeadModel) as a gonnsight module tree with
// Hugging Face's names, plus loading its config, safetensors weights and tokenizer.
package gpt2

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/gonnsight/gonnsight/internal/fsx"
	"github.com/gonnsight/gonnsight/module"
)

// Config holds the fields of Hugging Face's GPT2Config that the forward uses.
type Config struct {
	VocabSize        int     `json:"vocab_size"`
	NPositions       int     `json:"n_positions"`
	NEmbd            int     `json:"n_embd"`
	NLayer           int     `json:"n_layer"`
	NHead            int     `json:"n_head"`
	NInner           *int    `json:"n_inner,omitempty"`
	LayerNormEpsilon float64 `json:"layer_norm_epsilon"`
	Activation       string  `json:"activation_function"`
	BOSTokenID       int     `json:"bos_token_id"`
	EOSTokenID       int     `json:"eos_token_id"`
	ModelType        string  `json:"model_type"`
	InitializerRange float64 `json:"initializer_range"`
	// TieWordEmbeddings false gives lm_head its own weight (lm_head.weight) instead of
	// transformer.wte's; absent means true, as in Hugging Face's PretrainedConfig.
	TieWordEmbeddings *bool `json:"tie_word_embeddings,omitempty"`
	// ScaleAttnWeights false leaves attention scores undivided by sqrt(head_dim) (absent
	// means true); ScaleAttnByInverseLayerIdx also divides layer i's scores by i+1 (Stanford
	// CRFM's GPT-2 models set it). Both as in Hugging Face's GPT2Attention.
	ScaleAttnWeights           *bool `json:"scale_attn_weights,omitempty"`
	ScaleAttnByInverseLayerIdx bool  `json:"scale_attn_by_inverse_layer_idx,omitempty"`
}

// AttentionScale is what layer's attention scores are divided by: sqrt(head_dim) unless
// scale_attn_weights is false, times layer+1 when scale_attn_by_inverse_layer_idx.
func (c Config) AttentionScale(layer int) float64 {
	s := 1.0
	if c.ScaleAttnWeights == nil || *c.ScaleAttnWeights {
		s = math.Sqrt(float64(c.HeadDim()))
	}
	if c.ScaleAttnByInverseLayerIdx {
		s *= float64(layer + 1)
	}
	return s
}

// Tied reports whether lm_head reads transformer.wte.weight (tie_word_embeddings, default true).
func (c Config) Tied() bool { return c.TieWordEmbeddings == nil || *c.TieWordEmbeddings }

// Unembedding is the name of the [vocab, n_embd] weight lm_head multiplies by:
// transformer.wte.weight when tied, lm_head.weight when not.
func (c Config) Unembedding() string {
	if c.Tied() {
		return "transformer.wte.weight"
	}
	return "lm_head.weight"
}

// Small is the configuration of GPT-2 small (openai-community/gpt2).
func Small() Config {
	return Config{VocabSize: 50257, NPositions: 1024, NEmbd: 768, NLayer: 12, NHead: 12,
		LayerNormEpsilon: 1e-5, Activation: "gelu_new", BOSTokenID: 50256, EOSTokenID: 50256,
		ModelType: "gpt2", InitializerRange: 0.02}
}

// Inner is the MLP width (n_inner, default 4*n_embd).
func (c Config) Inner() int {
	if c.NInner != nil && *c.NInner > 0 {
		return *c.NInner
	}
	return 4 * c.NEmbd
}

// HeadDim is n_embd / n_head.
func (c Config) HeadDim() int { return c.NEmbd / c.NHead }

// Limits on a config's sizes, far above any GPT-2 (GPT-2 XL: 48 layers, 1600 wide, 1024
// positions, 50257 tokens), so that a corrupt or hostile config.json is an error rather than
// an allocation that kills the process.
const (
	maxLayers    = 1 << 12
	maxWidth     = 1 << 16 // n_embd
	maxInner     = 1 << 18 // n_inner (default 4*n_embd)
	maxPositions = 1 << 20
	maxVocab     = 1 << 22
	// maxParams bounds the parameter count (2^34 float32 = 64 GiB).
	maxParams = 1 << 34
)

// NumParams is the number of parameters the config implies (float64: no overflow).
func (c Config) NumParams() float64 {
	e, v, p, l, in := float64(c.NEmbd), float64(c.VocabSize), float64(c.NPositions), float64(c.NLayer), float64(c.Inner())
	block := 2*2*e + (e*3*e + 3*e) + (e*e + e) + (e*in + in) + (in*e + e)
	head := 0.0
	if !c.Tied() {
		head = v * e
	}
	return v*e + p*e + l*block + 2*e + head
}

// Validate checks that the config describes a buildable GPT-2 of a size that can exist.
func (c Config) Validate() error {
	switch {
	case c.NLayer <= 0 || c.NHead <= 0 || c.NEmbd <= 0 || c.VocabSize <= 0 || c.NPositions <= 0:
		return fmt.Errorf("n_layer, n_head, n_embd, vocab_size and n_positions must be positive (got %d, %d, %d, %d, %d)",
			c.NLayer, c.NHead, c.NEmbd, c.VocabSize, c.NPositions)
	case c.NLayer > maxLayers:
		return fmt.Errorf("n_layer=%d is too large (at most %d)", c.NLayer, maxLayers)
	case c.NEmbd > maxWidth:
		return fmt.Errorf("n_embd=%d is too large (at most %d)", c.NEmbd, maxWidth)
	case c.NInner != nil && *c.NInner < 0:
		return fmt.Errorf("n_inner=%d is negative", *c.NInner)
	case c.Inner() > maxInner:
		return fmt.Errorf("n_inner=%d is too large (at most %d)", c.Inner(), maxInner)
	case c.NPositions > maxPositions:
		return fmt.Errorf("n_positions=%d is too large (at most %d)", c.NPositions, maxPositions)
	case c.VocabSize > maxVocab:
		return fmt.Errorf("vocab_size=%d is too large (at most %d)", c.VocabSize, maxVocab)
	case c.NEmbd%c.NHead != 0:
		return fmt.Errorf("n_embd %d is not divisible by n_head %d", c.NEmbd, c.NHead)
	case c.Activation != "" && !slices.Contains(module.KnownActivations, c.Activation):
		return fmt.Errorf("activation_function %q is not one gonnsight computes (known: %s)", c.Activation, strings.Join(module.KnownActivations, ", "))
	case c.NumParams() > maxParams:
		return fmt.Errorf("the config implies %.3g parameters, too large (at most %d)", c.NumParams(), int64(maxParams))
	}
	return nil
}

// maxConfigBytes bounds config.json (a real one is under 2 KB).
const maxConfigBytes = 1 << 20

// ReadConfig reads a Hugging Face config.json.
func ReadConfig(path string) (Config, error) {
	data, err := fsx.ReadRegular(path, maxConfigBytes)
	if err != nil {
		return Config{}, err
	}
	return parseConfig(path, data)
}

// parseConfig parses the contents of a config.json; path names it in errors.
func parseConfig(path string, data []byte) (Config, error) {
	c := Config{LayerNormEpsilon: 1e-5, Activation: "gelu_new", EOSTokenID: -1, BOSTokenID: -1}
	// n_ctx is an older alias of n_positions.
	var extra struct {
		NCtx int `json:"n_ctx"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("%s: not a valid config.json: %w", path, err)
	}
	_ = json.Unmarshal(data, &extra)
	if c.NPositions == 0 {
		c.NPositions = extra.NCtx
	}
	if c.ModelType != "" && c.ModelType != "gpt2" {
		return Config{}, fmt.Errorf("%s: model_type is %q; gonnsight loads GPT-2 models (model_type \"gpt2\")", path, c.ModelType)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WriteConfig writes a Hugging Face style config.json.
func WriteConfig(path string, c Config) error {
	m := map[string]any{
		"architectures": []string{"GPT2LMHeadModel"}, "model_type": "gpt2",
		"vocab_size": c.VocabSize, "n_positions": c.NPositions, "n_ctx": c.NPositions, "n_embd": c.NEmbd,
		"n_layer": c.NLayer, "n_head": c.NHead, "layer_norm_epsilon": c.LayerNormEpsilon,
		"activation_function": c.Activation, "bos_token_id": c.BOSTokenID, "eos_token_id": c.EOSTokenID,
		"initializer_range": c.InitializerRange, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
	}
	if !c.Tied() {
		m["tie_word_embeddings"] = false
	}
	if c.ScaleAttnWeights != nil && !*c.ScaleAttnWeights {
		m["scale_attn_weights"] = false
	}
	if c.ScaleAttnByInverseLayerIdx {
		m["scale_attn_by_inverse_layer_idx"] = true
	}
	data, _ := json.MarshalIndent(m, "", "  ")
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
