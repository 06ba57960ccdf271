// Command gpucheck compares GPT-2-small on XLA (CUDA) against the Go backend on the same
// random weights, runs a trace with an edit, and times the workloads of issue 8. It writes
// the weights as a Hugging Face model directory so the PyTorch peer can load the same ones.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
	"github.com/gonnsight/gonnsight/safetensors"
)

func main() {
	backend := flag.String("backend", "", "backend to test (xla:/path/plugin.so); default: automatic")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "gonnsight-gpt2-random"), "where to write the random model")
	reps := flag.Int("reps", 10, "timing repetitions")
	quick := flag.Bool("quick", false, "small shapes only (CPU dry run)")
	flag.Parse()
	if err := run(*backend, *dir, *reps, *quick); err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(1)
	}
}

type report struct {
	Backend, Reason string
	MaxRelErr       map[string]float64
	EditQueryShape  []int
	TimesMS         map[string]float64
}

func run(backend, dir string, reps int, quick bool) error {
	cfg := gpt2.Small()
	if err := writeRandomModel(dir, cfg); err != nil {
		return err
	}
	fast, err := engine.Open(backend)
	if err != nil {
		return err
	}
	ref, err := engine.Open("go")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "backend under test: %s (%s)\n", fast.Name, fast.Reason)
	mf := nnsight.LanguageModel(dir, nnsight.WithEngine(fast))
	mr := nnsight.LanguageModel(dir, nnsight.WithEngine(ref))
	rep := report{Backend: fast.Name, Reason: fast.Reason, MaxRelErr: map[string]float64{}, TimesMS: map[string]float64{}}

	prompt := "The Eiffel Tower is in the city of Paris, and the Colosseum is in"
	saves := []string{"transformer.h.0.attn.query", "transformer.h.5.mlp", "transformer.h.11", "transformer.ln_f"}
	trace := func(m *nnsight.Model) (*nnsight.Result, error) {
		return m.Trace(prompt, func(t *nnsight.Tracer) {
			for _, s := range saves {
				t.Module(s).Output().Save(s)
			}
		})
	}
	a, err := trace(mf)
	if err != nil {
		return err
	}
	b, err := trace(mr)
	if err != nil {
		return err
	}
	for _, s := range append(saves, "logits") {
		x, _, _ := a.Float32(s)
		y, _, _ := b.Float32(s)
		rep.MaxRelErr[s] = relErr(x, y)
	}
	// A trace with an edit on the backend under test.
	if err := mf.LoadEdits(edit.New("transformer.h.3.attn", "query", "query_wrapper", edit.Identity())); err != nil {
		return err
	}
	res, err := mf.Trace(prompt, func(t *nnsight.Tracer) { t.Module("transformer.h.3.attn.query_wrapper").Output().Save("q") })
	if err != nil {
		return err
	}
	_, rep.EditQueryShape, _ = res.Float32("q")
	// The wrapper sits on c_attn's split, before the head split: [batch, pos, embd].
	if q := rep.EditQueryShape; len(q) != 3 || q[0] != 1 || q[2] != cfg.NEmbd {
		return fmt.Errorf("query_wrapper output shape %v, want [1 seq %d] (batch, pos, embd)", q, cfg.NEmbd)
	}
	mf.ClearEdits()

	ids := func(b, s int) [][]int {
		out := make([][]int, b)
		for i := range out {
			out[i] = make([]int, s)
			for j := range out[i] {
				out[i][j] = (i*131 + j*17) % 50000
			}
		}
		return out
	}
	shapes := [][2]int{{1, 128}, {8, 128}, {32, 512}}
	if quick {
		shapes = [][2]int{{1, 8}}
	}
	for _, sh := range shapes {
		in := ids(sh[0], sh[1])
		rep.TimesMS[fmt.Sprintf("forward %dx%d", sh[0], sh[1])] = median(reps, func() error { _, err := mf.Trace(in, nil); return err })
	}
	nGen := 64
	if quick {
		nGen = 4
	}
	rep.TimesMS[fmt.Sprintf("generate %d tokens", nGen)] = median(max(1, reps/3), func() error {
		_, err := mf.Generate(ids(1, 8), nGen, nil, nnsight.IgnoreEOS())
		return err
	})
	clean, corrupt := ids(1, 16)[0], ids(1, 16)[0]
	corrupt[3] = 999
	layers := 12
	if quick {
		layers = 1
	}
	rep.TimesMS[fmt.Sprintf("patching sweep %dx16", layers)] = median(1, func() error {
		for L := 0; L < layers; L++ {
			for P := 0; P < 16; P++ {
				_, err := mf.Trace(nil, func(t *nnsight.Tracer) {
					var src *nnsight.Proxy
					t.Invoke(clean, func(iv *nnsight.Tracer) { src = iv.Module(fmt.Sprintf("transformer.h.%d", L)).Output().At(1, P, P+1) })
					t.Invoke(corrupt, func(iv *nnsight.Tracer) {
						iv.Module(fmt.Sprintf("transformer.h.%d", L)).Output().At(1, P, P+1).Set(src)
						iv.Compute("diff", func() *ops.Node { return ops.LogitDiff(iv.Logits().Node(), 0, 5, 7) })
					})
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	return nil
}

func median(n int, fn func() error) float64 {
	if err := fn(); err != nil { // warm-up (compiles)
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		return math.NaN()
	}
	var ts []float64
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := fn(); err != nil {
			return math.NaN()
		}
		ts = append(ts, float64(time.Since(t0).Microseconds())/1000)
	}
	sort.Float64s(ts)
	return ts[len(ts)/2]
}

func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		num = math.Max(num, math.Abs(float64(a[i]-b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	return num / math.Max(den, 1e-30)
}

// writeRandomModel writes a GPT-2 with random weights (N(0, 0.02), fixed seed) in Hugging
// Face's layout, unless it is already there.
func writeRandomModel(dir string, cfg gpt2.Config) error {
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := nnsight.RandomLanguageModel(cfg, 1234, nnsight.WithBackend("go"))
	if err := m.Load(); err != nil {
		return err
	}
	var list []safetensors.Tensor
	for name, t := range m.Weights() {
		list = append(list, safetensors.F32(name, t.Shape().Dimensions, tensors.MustCopyFlatData[float32](t)))
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), list, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	return gpt2.WriteConfig(filepath.Join(dir, "config.json"), cfg)
}
