package gpt2

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/internal/hub"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/safetensors"
	"github.com/gonnsight/gonnsight/tokenizer"
)

// Weights maps full parameter names (module path + "." + name) to tensors.
type Weights map[string]*tensors.Tensor

// Pretrained is a loaded GPT-2: config, module tree, weights and tokenizer.
type Pretrained struct {
	Config    Config
	Model     *LMHeadModel
	Weights   Weights
	Tokenizer *tokenizer.Tokenizer
	// Source is what the user asked for (hub id or directory); Dir where the files are.
	Source, Dir string
	// Ignored lists tensors of the file that the model does not use (buffers such as attn.bias).
	Ignored []string
}

// Files a GPT-2 directory may hold.
var (
	requiredFiles = []string{"config.json", "model.safetensors"}
	optionalFiles = []string{"tokenizer.json", "vocab.json", "merges.txt", "generation_config.json"}
)

// Load loads a model from a local directory or a Hugging Face hub id (through the HF cache,
// downloading through HF_ENDPOINT when needed). "" or DefaultID is the trained default
// model (DefaultDir), TinyID the generated random one. Weights are placed on backend b.
func Load(idOrDir string, b compute.Backend) (*Pretrained, error) {
	if isDefaultID(idOrDir) && !hub.IsLocalDir(idOrDir) {
		// The trained default ships with the source, never downloaded.
		dir, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		p, err := LoadDir(dir, b)
		if err != nil {
			return nil, err
		}
		p.Source = DefaultID
		return p, nil
	}
	if isTinyID(idOrDir) && !hub.IsLocalDir(idOrDir) {
		// TinyID is generated locally, never downloaded.
		dir, err := EnsureTiny()
		if err != nil {
			return nil, err
		}
		p, err := LoadDir(dir, b)
		if err != nil {
			return nil, err
		}
		p.Source = idOrDir
		return p, nil
	}
	res, err := hub.Resolve(idOrDir, requiredFiles, optionalFiles, nil)
	if err != nil {
		if hub.IsLocalDir(idOrDir) {
			if _, serr := os.Stat(filepath.Join(idOrDir, "pytorch_model.bin")); serr == nil {
				return nil, fmt.Errorf("%s has pytorch_model.bin but no model.safetensors: gonnsight reads safetensors only "+
					"(convert with transformers' save_pretrained(..., safe_serialization=True))", idOrDir)
			}
		}
		return nil, err
	}
	p, err := LoadDir(res.Dir, b)
	if err != nil {
		return nil, err
	}
	p.Source = idOrDir
	return p, nil
}

// LoadDir loads config.json, model.safetensors and the tokenizer from dir.
func LoadDir(dir string, b compute.Backend) (*Pretrained, error) {
	cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil && hasAny(dir, "tokenizer.json", "vocab.json", "merges.txt") {
		return nil, err
	}
	if err != nil {
		// No tokenizer files: a GPT-2-sized vocabulary gets GPT-2's own tokenizer; smaller
		// test models take token ids only.
		tok = nil
		if cfg.VocabSize >= 50257 {
			tok = tokenizer.GPT2()
		}
	}
	if tok != nil && tok.VocabSize() > cfg.VocabSize {
		return nil, fmt.Errorf("%s: the tokenizer has %d tokens but config.json says vocab_size=%d", dir, tok.VocabSize(), cfg.VocabSize)
	}
	// Check the config's sizes against what the weights file holds before building anything
	// of the config's size.
	wpath := filepath.Join(dir, "model.safetensors")
	f, err := safetensors.Open(wpath)
	if err != nil {
		return nil, err
	}
	err = checkWeightsFit(cfg, f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	model := New(cfg)
	w, ignored, err := ReadWeights(wpath, model, b)
	if err != nil {
		return nil, err
	}
	return &Pretrained{Config: cfg, Model: model, Weights: w, Tokenizer: tok, Source: dir, Dir: dir, Ignored: ignored}, nil
}

// checkWeightsFit compares config.json's sizes with the tensors a weights file holds (its
// header only): the number of blocks (h.N.*), wte [vocab_size, n_embd], wpe [n_positions,
// n_embd] and the MLP's width. A mismatch names both sides.
func checkWeightsFit(cfg Config, f *safetensors.File) error {
	layers := 0
	shapes := map[string][]int{}
	for _, key := range f.Names() {
		name := canonicalName(key)
		info, _ := f.Info(key)
		shapes[name] = info.Shape
		rest, ok := strings.CutPrefix(name, "transformer.h.")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		n := 0
		for _, r := range num {
			if r < '0' || r > '9' || n > maxLayers {
				n = -1
				break
			}
			n = n*10 + int(r-'0')
		}
		if n >= 0 && n+1 > layers {
			layers = n + 1
		}
	}
	if cfg.NLayer != layers {
		return fmt.Errorf("config.json says n_layer=%d but %s holds %d layers (transformer.h.0 ... h.%d)",
			cfg.NLayer, filepath.Base(f.Path()), layers, layers-1)
	}
	check := func(name, what string, want []int) error {
		got, ok := shapes[name]
		if !ok {
			return nil // ReadWeights reports missing tensors with the list of present ones
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("config.json says %s, so %s should have shape %v, but %s holds %v",
				what, name, want, filepath.Base(f.Path()), got)
		}
		return nil
	}
	if err := check("transformer.wte.weight", fmt.Sprintf("vocab_size=%d and n_embd=%d", cfg.VocabSize, cfg.NEmbd), []int{cfg.VocabSize, cfg.NEmbd}); err != nil {
		return err
	}
	if err := check("transformer.wpe.weight", fmt.Sprintf("n_positions=%d and n_embd=%d", cfg.NPositions, cfg.NEmbd), []int{cfg.NPositions, cfg.NEmbd}); err != nil {
		return err
	}
	return check("transformer.h.0.mlp.c_fc.weight", fmt.Sprintf("n_embd=%d and n_inner=%d", cfg.NEmbd, cfg.Inner()), []int{cfg.NEmbd, cfg.Inner()})
}

// paramShapes lists every parameter of the tree with its shape, by full name.
func paramShapes(root module.Module) map[string][]int {
	out := map[string][]int{}
	var walk func(prefix string, m module.Module)
	walk = func(prefix string, m module.Module) {
		for _, p := range module.ParamsOf(m) {
			out[module.Join(prefix, p.Name)] = p.Shape
		}
		for _, ch := range module.ChildrenOf(m) {
			walk(module.Join(prefix, ch.Name), ch.Module)
		}
	}
	walk("", root)
	return out
}

// canonicalName maps a Hugging Face tensor name to gonnsight's parameter name: keys saved
// without the "transformer." prefix (GPT2Model checkpoints) get it.
func canonicalName(key string) string {
	if strings.HasPrefix(key, "transformer.") || strings.HasPrefix(key, "lm_head.") {
		return key
	}
	return "transformer." + key
}

// ReadWeights reads and checks a safetensors file against the model's parameters: every
// parameter must be present with the config's shape. Buffers HF saves (attn.bias,
// attn.masked_bias) and the tied lm_head.weight are ignored.
func ReadWeights(path string, model module.Module, b compute.Backend) (Weights, []string, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	want := paramShapes(model)
	w := Weights{}
	var ignored []string
	for _, key := range f.Names() {
		name := canonicalName(key)
		shape, ok := want[name]
		if !ok {
			ignored = append(ignored, key)
			continue
		}
		info, _ := f.Info(key)
		if !slices.Equal(info.Shape, shape) {
			return nil, nil, fmt.Errorf("%s: tensor %q has shape %v but config.json implies %v (does config.json belong to these weights?)",
				path, key, info.Shape, shape)
		}
		data, err := f.Float32(key)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", path, key, err)
		}
		t, err := ToBackend(b, data, shape)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", path, key, err)
		}
		w[name] = t
	}
	var missing []string
	for name := range want {
		if _, ok := w[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		more := ""
		if len(missing) > 5 {
			more = fmt.Sprintf(" and %d more", len(missing)-5)
			missing = missing[:5]
		}
		return nil, nil, fmt.Errorf("%s: missing tensors %s%s (the file has %d tensors, e.g. %s)", path,
			strings.Join(missing, ", "), more, len(f.Names()), strings.Join(first(f.Names(), 3), ", "))
	}
	return w, ignored, nil
}

func first(s []string, n int) []string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// ToBackend places float32 data on the backend (a resident device buffer).
func ToBackend(b compute.Backend, data []float32, shape []int) (*tensors.Tensor, error) {
	sh := shapes.Make(dtypes.Float32, shape...)
	if b == nil {
		return tensors.FromFlatDataAndDimensions(append([]float32(nil), data...), shape...), nil
	}
	return tensors.FromRaw(b, 0, sh, float32Bytes(data))
}

func hasAny(dir string, names ...string) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// FromParts assembles a model whose weights are already placed (on a model host: weights
// that name the host's resident tensors): config.json's bytes, the tokenizer's files
// (empty: none) and the weights, checked against the config's parameters.
func FromParts(configJSON, vocabJSON, mergesTXT []byte, w Weights) (*Pretrained, error) {
	cfg, err := parseConfig("config.json", configJSON)
	if err != nil {
		return nil, err
	}
	var tok *tokenizer.Tokenizer
	if len(vocabJSON) > 0 {
		if tok, err = tokenizer.FromFiles(vocabJSON, mergesTXT); err != nil {
			return nil, err
		}
	} else if cfg.VocabSize >= 50257 {
		tok = tokenizer.GPT2()
	}
	model := New(cfg)
	want := paramShapes(model)
	for name, shape := range want {
		t, ok := w[name]
		if !ok {
			return nil, fmt.Errorf("no weight %q among the %d given", name, len(w))
		}
		if !slices.Equal(t.Shape().Dimensions, shape) {
			return nil, fmt.Errorf("weight %q has shape %v, config.json implies %v", name, t.Shape().Dimensions, shape)
		}
	}
	return &Pretrained{Config: cfg, Model: model, Weights: w, Tokenizer: tok}, nil
}
