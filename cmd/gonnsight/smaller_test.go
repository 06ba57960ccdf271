package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/safetensors"
)

// A model whose logits are NaN still gets valid JSON (null where a logit is not finite) and
// a warning on stderr.
func TestLogitsNaNValidJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nan")
	if err := gpt2.MakeTiny(dir, gpt2.TinyOptions{Layers: 1, Embd: 16, Heads: 2, Positions: 16}); err != nil {
		t.Fatal(err)
	}
	wpath := filepath.Join(dir, "model.safetensors")
	f, err := safetensors.Open(wpath)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		data, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		data = append([]float32(nil), data...)
		info, _ := f.Info(name)
		if name == "ln_f.weight" {
			data[0] = float32(math.NaN())
		}
		shape := make([]int, len(info.Shape))
		for i, d := range info.Shape {
			shape[i] = int(d)
		}
		ts = append(ts, safetensors.F32(name, shape, data))
	}
	f.Close()
	if err := safetensors.Write(wpath, ts, nil); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "logits", "--model", dir, "--ids", "1,2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v struct {
		LastLogits []*float64 `json:"last_logits"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("stdout is not valid JSON: %v\n%.300s", err, out)
	}
	if len(v.LastLogits) == 0 || v.LastLogits[0] != nil {
		t.Errorf("a NaN logit should be null")
	}
	if !strings.Contains(errOut, "NaN") {
		t.Errorf("no warning about NaN logits on stderr: %q", errOut)
	}
}

// Flags that make no sense are usage errors naming the flag, never silently accepted.
func TestNonsenseFlags(t *testing.T) {
	nb := filepath.Join(t.TempDir(), "x.ipynb")
	_ = os.WriteFile(nb, []byte(`{"nbformat":4,"nbformat_minor":5,"metadata":{},"cells":[]}`), 0o644)
	for _, args := range [][]string{
		{"generate", "--ids", "1", "--temperature", "NaN"},
		{"generate", "--ids", "1", "--temperature", "+Inf"},
		{"run", nb, "--timeout", "-5s"},
	} {
		code, _, errOut := runCLI(t, args...)
		flagName := args[len(args)-2]
		if code != 2 || !strings.Contains(errOut, flagName) {
			t.Errorf("%v: exit %d, stderr %q; want a usage error naming %s", args, code, errOut, flagName)
		}
	}
}
