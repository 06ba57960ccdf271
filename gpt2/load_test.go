package gpt2_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/golden"
	"github.com/gonnsight/gonnsight/safetensors"
)

func copyDir(t *testing.T, src string) string {
	dst := t.TempDir()
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644)
	}
	return dst
}

func TestLoadBadInput(t *testing.T) {
	src := filepath.Join(golden.Root(), "testdata", "gpt2", "tiny-a")
	p, err := gpt2.LoadDir(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Ignored) != 2 || !strings.Contains(strings.Join(p.Ignored, ","), "attn.bias") {
		t.Errorf("the attn.bias buffers must be ignored, got %v", p.Ignored)
	}

	// A config that disagrees with the weights.
	dir := copyDir(t, src)
	cfg, _ := gpt2.ReadConfig(filepath.Join(dir, "config.json"))
	cfg.NEmbd = 32
	gpt2.WriteConfig(filepath.Join(dir, "config.json"), cfg)
	if _, err := gpt2.LoadDir(dir, nil); err == nil || !strings.Contains(err.Error(), "config.json") || !strings.Contains(err.Error(), "shape") {
		t.Errorf("config/weights mismatch: %v", err)
	}

	// Missing tensors.
	dir = copyDir(t, src)
	f, _ := safetensors.Open(filepath.Join(src, "model.safetensors"))
	var keep []safetensors.Tensor
	for _, n := range f.Names() {
		if strings.Contains(n, "ln_f") {
			continue
		}
		info, _ := f.Info(n)
		data, _ := f.Float32(n)
		keep = append(keep, safetensors.F32(n, info.Shape, data))
	}
	f.Close()
	safetensors.Write(filepath.Join(dir, "model.safetensors"), keep, nil)
	if _, err := gpt2.LoadDir(dir, nil); err == nil || !strings.Contains(err.Error(), "transformer.ln_f.bias") {
		t.Errorf("missing tensors: %v", err)
	}

	// Truncated weights.
	dir = copyDir(t, src)
	path := filepath.Join(dir, "model.safetensors")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)/2], 0o644)
	if _, err := gpt2.LoadDir(dir, nil); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("truncated file: %v", err)
	}

	// No weights at all.
	dir = copyDir(t, src)
	os.Remove(filepath.Join(dir, "model.safetensors"))
	if _, err := gpt2.Load(dir, nil); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("missing model.safetensors: %v", err)
	}

	// A config that is not GPT-2.
	dir = copyDir(t, src)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "llama", "n_layer": 1}`), 0o644)
	if _, err := gpt2.LoadDir(dir, nil); err == nil || !strings.Contains(err.Error(), "llama") {
		t.Errorf("wrong model type: %v", err)
	}
}
