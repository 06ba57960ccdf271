// Package nnsight_test is gonnsight's port of nnsight's own test suite (ndif-team/nnsight
// tests/test_lm.py, test_envoys.py, test_iter_edge_cases.py, test_0516_features.py and the
// agent-eval tasks): one Go test per peer test, named after it, asserting what the peer
// asserts. The peers run the real GPT-2 and check its predictions ("Paris", " New York
// City"); here the model is a small random GPT-2 with GPT-2's layer structure and tokenizer,
// so such checks become relations that hold for any weights (a patched prompt generates what
// the prompt itself generates, a batch row equals the prompt alone, ...).
// docs/nnsight-tests.md lists every peer test with the Go test that ports it.
package nnsight_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/nnsight"
)

// The prompts of nnsight's conftest.py.
const (
	msgPrompt = "Madison Square Garden is located in the city of"
	etPrompt  = "The Eiffel Tower is in the city of"
)

// tinyConfig has GPT-2 small's structure (12 blocks, GPT-2's vocabulary and tokenizer) at a
// width that runs in milliseconds, so the peers' paths (h[5], h[6], h[10], h[-1]) and counts
// (12 layers) carry over unchanged.
func tinyConfig() gpt2.Config {
	c := gpt2.Small()
	c.NEmbd, c.NHead, c.NPositions = 32, 4, 128
	return c
}

var (
	sharedOnce sync.Once
	shared     *nnsight.Model
)

// lm is the model shared by the tests that load no edits (its compiled programs are reused).
func lm(t *testing.T) *nnsight.Model {
	t.Helper()
	sharedOnce.Do(func() { shared = newLM() })
	if err := shared.Load(); err != nil {
		t.Fatal(err)
	}
	return shared
}

// newLM is a model of its own (same weights as lm), for tests that load edits or options.
func newLM(opts ...nnsight.Option) *nnsight.Model {
	return nnsight.RandomLanguageModel(tinyConfig(), 1, append([]nnsight.Option{nnsight.WithBackend("go")}, opts...)...)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// f32 is a saved float value's data and shape.
func f32(t *testing.T, res *nnsight.Result, name string) ([]float32, []int) {
	t.Helper()
	d, s, err := res.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

func data(t *testing.T, x *tensors.Tensor) ([]float32, []int) {
	t.Helper()
	d, s, err := nnsight.Float32(x)
	if err != nil {
		t.Fatal(err)
	}
	return d, s
}

func logits(t *testing.T, res *nnsight.Result) ([]float32, []int) {
	t.Helper()
	return data(t, res.Logits())
}

func allZero(x []float32) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return len(x) > 0
}

// noneZero is torch.all(x != 0).
func noneZero(x []float32) bool {
	for _, v := range x {
		if v == 0 {
			return false
		}
	}
	return len(x) > 0
}

// rowsOf returns rows [lo, hi) of a value whose first axis is the batch.
func rowsOf(x []float32, shape []int, lo, hi int) []float32 {
	n := len(x) / shape[0]
	return x[lo*n : hi*n]
}

// lastPos is the last position of each row of a [batch, seq, d] value: [batch, d].
func lastPos(x []float32, shape []int) []float32 {
	b, s, d := shape[0], shape[1], shape[2]
	var out []float32
	for i := 0; i < b; i++ {
		out = append(out, x[(i*s+s-1)*d:(i*s+s)*d]...)
	}
	return out
}

// argmaxRows is the argmax of each row of length d.
func argmaxRows(x []float32, d int) []int {
	var out []int
	for off := 0; off+d <= len(x); off += d {
		best := off
		for i := off; i < off+d; i++ {
			if x[i] > x[best] {
				best = i
			}
		}
		out = append(out, best-off)
	}
	return out
}

func close(a, b []float32, tol float64) bool {
	return len(a) == len(b) && nnsight.MaxAbsDiff(a, b) <= tol
}

func equal(a, b []float32) bool { return slices.Equal(a, b) }

// tokens is the GPT-2 tokenization of s.
func tokens(t *testing.T, m *nnsight.Model, s string) []int {
	t.Helper()
	return m.Tokenizer().Encode(s)
}

// last is the last block (nnsight's h[-1]; negative indices are written out here so that
// these tests run with today's paths).
const last = "transformer.h.11"

// ints is an integer value's data (ArgMax results, token ids).
func ints(t *testing.T, x *tensors.Tensor) []int {
	t.Helper()
	if x == nil {
		t.Fatal("nil tensor")
	}
	var out []int
	switch x.DType().String() {
	case "Int32":
		for _, v := range tensors.MustCopyFlatData[int32](x) {
			out = append(out, int(v))
		}
	case "Int64":
		for _, v := range tensors.MustCopyFlatData[int64](x) {
			out = append(out, int(v))
		}
	default:
		t.Fatalf("tensor is %s, not an integer", x.DType())
	}
	return out
}

// outputNode names the node a module returns in its captured graph: the node an edit wraps
// to act on the module's output (nnsight's `with model.edit(): module.output[:] = ...`).
func outputNode(t *testing.T, m *nnsight.Model, path string) string {
	t.Helper()
	gr, err := m.Graph(path)
	must(t, err)
	for _, n := range gr.Nodes {
		if n.Op == "output" && len(n.Args) > 0 {
			return n.Args[0]
		}
	}
	t.Fatalf("no output node in the graph of %s", path)
	return ""
}

// plainGreedy generates n tokens by tracing the whole sequence each step and taking the
// argmax of the last position: an independent reference for Generate (no KV cache).
func plainGreedy(t *testing.T, m *nnsight.Model, prompt []int, n int) []int {
	t.Helper()
	seq := append([]int(nil), prompt...)
	var out []int
	for i := 0; i < n; i++ {
		res, err := m.Trace(seq, nil)
		must(t, err)
		d, s := logits(t, res)
		next := argmaxRows(lastPos(d, s), s[2])[0]
		out = append(out, next)
		seq = append(seq, next)
	}
	return out
}

func fmtInts(x []int) string { return fmt.Sprint(x) }
