// Package golden reads the reference fixtures that tests/reference/gpt2_ref.py wrote
// (an independent PyTorch GPT-2) and compares gonnsight's values against them.
package golden

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gonnsight/gonnsight/safetensors"
)

// Fixture is one tiny model's directory with its golden values.
type Fixture struct {
	Dir  string
	JSON map[string]any
	file *safetensors.File
}

// Models are the fixture directories (tiny-c: an untied lm_head and
// scale_attn_by_inverse_layer_idx, Hugging Face options that change the numbers).
var Models = []string{"tiny-a", "tiny-b", "tiny-c"}

// Root is the repository root (found from this file's location).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Open opens a fixture by name ("tiny-a").
func Open(t testing.TB, name string) *Fixture {
	t.Helper()
	return OpenFile(t, name, "golden")
}

// OpenFile opens another pair of fixture files of a model's directory: base.json and
// base.safetensors (e.g. "experiments", written by tests/reference/experiments_ref.py).
func OpenFile(t testing.TB, name, base string) *Fixture {
	t.Helper()
	dir := filepath.Join(Root(), "testdata", "gpt2", name)
	data, err := os.ReadFile(filepath.Join(dir, base+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]any
	if err := json.Unmarshal(data, &js); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, base+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &Fixture{Dir: dir, JSON: js, file: f}
}

// Tensor returns a golden tensor's data and shape.
func (f *Fixture) Tensor(t testing.TB, key string) ([]float32, []int) {
	t.Helper()
	info, ok := f.file.Info(key)
	if !ok {
		t.Fatalf("golden key %q missing in %s", key, f.Dir)
	}
	data, err := f.file.Float32(key)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), data...), info.Shape
}

// Has reports whether the golden file has key.
func (f *Fixture) Has(key string) bool { _, ok := f.file.Info(key); return ok }

// Ints reads an int list from golden.json by a path of keys.
func (f *Fixture) Ints(t testing.TB, path ...string) []int {
	t.Helper()
	var v any = f.JSON
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("golden.json: %v is not an object at %q", path, p)
		}
		v = m[p]
	}
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("golden.json: %v is not a list", path)
	}
	out := make([]int, len(list))
	for i, x := range list {
		out[i] = int(x.(float64))
	}
	return out
}

// Int reads a number from golden.json.
func (f *Fixture) Int(t testing.TB, key string) int {
	v, ok := f.JSON[key].(float64)
	if !ok {
		t.Fatalf("golden.json: %q is not a number", key)
	}
	return int(v)
}

// RelErr is max|a-b| / max|b|.
func RelErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		num = math.Max(num, math.Abs(float64(a[i])-float64(b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	if den == 0 {
		return num
	}
	return num / den
}

// Compare fails the test when got differs from the golden key by more than tol (relative).
func (f *Fixture) Compare(t testing.TB, key string, got []float32, gotShape []int, tol float64) {
	t.Helper()
	want, shape := f.Tensor(t, key)
	if fmt.Sprint(shape) != fmt.Sprint(gotShape) {
		t.Errorf("%s: shape %v, reference %v", key, gotShape, shape)
		return
	}
	if e := RelErr(got, want); e > tol || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g > %.0e", key, e, tol)
	}
}

// CompareSlice compares got against a slice of a golden tensor.
func (f *Fixture) CompareSlice(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, reference %d", what, len(got), len(want))
		return
	}
	if e := RelErr(got, want); e > tol || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g > %.0e", what, e, tol)
	}
}
