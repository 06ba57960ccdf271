package gpt2

import (
	"crypto/sha256"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/safetensors"
	"github.com/gonnsight/gonnsight/tokenizer"
)

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

var smallTiny = TinyOptions{Layers: 2, Heads: 2, Embd: 16, Positions: 32}

func TestMakeTinyDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	other := smallTiny
	other.Seed = 1
	for dir, o := range map[string]TinyOptions{a: smallTiny, b: smallTiny, c: other} {
		if err := MakeTiny(dir, o); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb, sc := fileSHA(t, filepath.Join(a, "model.safetensors")), fileSHA(t, filepath.Join(b, "model.safetensors")),
		fileSHA(t, filepath.Join(c, "model.safetensors"))
	if sa != sb {
		t.Errorf("same seed, different weights: %s vs %s", sa, sb)
	}
	if sa == sc {
		t.Errorf("seeds 0 and 1 gave the same weights (%s)", sa)
	}
	for _, f := range []string{"config.json", "vocab.json", "merges.txt", "TOKENIZER_LICENSE", "TOKENIZER_README.md"} {
		if fileSHA(t, filepath.Join(a, f)) != fileSHA(t, filepath.Join(b, f)) {
			t.Errorf("%s differs between two runs with the same options", f)
		}
	}
}

func TestMakeTinyLayout(t *testing.T) {
	dir := t.TempDir()
	if err := MakeTiny(dir, smallTiny); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := f.Names()
	// openai-community/gpt2's naming: GPT2Model keys without "transformer.".
	for _, want := range []string{"wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.1.mlp.c_proj.bias", "ln_f.weight"} {
		if !slices.Contains(names, want) {
			t.Errorf("no tensor %q; tensors: %v", want, names)
		}
	}
	for _, n := range names {
		if strings.HasPrefix(n, "transformer.") {
			t.Errorf("tensor %q has the transformer. prefix", n)
		}
	}
	if info, _ := f.Info("wte.weight"); !slices.Equal(info.Shape, []int{50257, 16}) {
		t.Errorf("wte.weight shape %v, want [50257 16]", info.Shape)
	}
	std := func(name string) float64 {
		data, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for _, v := range data {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s / float64(len(data)))
	}
	if s := std("wte.weight"); math.Abs(s-0.02) > 0.001 {
		t.Errorf("wte.weight std %.4f, want 0.02", s)
	}
	if s, want := std("h.0.mlp.c_proj.weight"), 0.02/math.Sqrt(4); math.Abs(s-want) > 0.001 {
		t.Errorf("h.0.mlp.c_proj.weight std %.4f, want %.4f (0.02/sqrt(2*n_layer))", s, want)
	}
	ln, _ := f.Float32("h.0.ln_1.weight")
	bias, _ := f.Float32("h.0.attn.c_attn.bias")
	if ln[0] != 1 || bias[0] != 0 {
		t.Errorf("ln_1.weight[0]=%v (want 1), c_attn.bias[0]=%v (want 0)", ln[0], bias[0])
	}
}

func TestMakeTinyLoads(t *testing.T) {
	dir := t.TempDir()
	if err := MakeTiny(dir, smallTiny); err != nil {
		t.Fatal(err)
	}
	p, err := LoadDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Config.NLayer != 2 || p.Config.NHead != 2 || p.Config.NEmbd != 16 || p.Config.NPositions != 32 ||
		p.Config.VocabSize != 50257 || p.Config.EOSTokenID != 50256 {
		t.Errorf("config %+v", p.Config)
	}
	if len(p.Ignored) != 0 {
		t.Errorf("tensors not used by the model: %v", p.Ignored)
	}
	if p.Tokenizer == nil {
		t.Fatal("no tokenizer")
	}
	text := "The Eiffel Tower is in the city of"
	if got, want := p.Tokenizer.Encode(text), tokenizer.GPT2().Encode(text); !slices.Equal(got, want) {
		t.Errorf("tokenizer encodes %q as %v, GPT-2 as %v", text, got, want)
	}
	if p.Tokenizer.VocabSize() != 50257 {
		t.Errorf("tokenizer vocab %d", p.Tokenizer.VocabSize())
	}
}

func TestMakeTinyRejectsBadOptions(t *testing.T) {
	err := MakeTiny(t.TempDir(), TinyOptions{Heads: 3, Embd: 64})
	if err == nil || !strings.Contains(err.Error(), "n_head") {
		t.Errorf("n_embd 64 with 3 heads: err = %v, want one naming n_head", err)
	}
	if err := MakeTiny(t.TempDir(), TinyOptions{Layers: -1}); err == nil {
		t.Error("negative layers accepted")
	}
}

func TestEnsureTinyAndLoadByID(t *testing.T) {
	home := t.TempDir()
	t.Setenv("GONNSIGHT_HOME", home)
	want := filepath.Join(home, "models", "tiny-gpt2")
	if TinyDir() != want {
		t.Fatalf("TinyDir() = %s, want %s", TinyDir(), want)
	}
	dir, err := EnsureTiny()
	if err != nil {
		t.Fatal(err)
	}
	if dir != want {
		t.Errorf("EnsureTiny() = %s, want %s", dir, want)
	}
	sum := fileSHA(t, filepath.Join(dir, "model.safetensors"))
	ref := t.TempDir()
	if err := MakeTiny(ref, TinyOptions{}); err != nil {
		t.Fatal(err)
	}
	if fileSHA(t, filepath.Join(ref, "model.safetensors")) != sum {
		t.Error("EnsureTiny's model differs from MakeTiny with the default options")
	}
	// No temporary directories left behind.
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("%s holds %d entries, want only tiny-gpt2", filepath.Dir(dir), len(entries))
	}
	// A second call reuses the directory.
	if _, err := EnsureTiny(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{TinyID, "tiny"} {
		p, err := Load(id, nil)
		if err != nil {
			t.Fatalf("Load(%q): %v", id, err)
		}
		if p.Dir != dir || p.Source != id || p.Config.NLayer != 4 || p.Config.NEmbd != 64 || p.Config.NPositions != 256 {
			t.Errorf("Load(%q): dir %s source %s config %+v", id, p.Dir, p.Source, p.Config)
		}
	}
}
