package nnsight_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/internal/golden"
	"github.com/gonnsight/gonnsight/nnsight"
)

func TestRunWithCache(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	c, err := m.RunWithCache(fx.Ints(t, "p0"), "transformer.h.*.attn.attn_weights", "transformer.ln_f")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Paths) != 4 {
		t.Fatalf("cached %v", c.Paths)
	}
	for _, p := range c.Paths {
		d, s, _ := c.Float32(p)
		fx.Compare(t, "p0/"+p, d, s, tol)
	}
	all, err := m.RunWithCache(fx.Ints(t, "p0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Paths) < 3*15 {
		t.Errorf("a full cache has only %d values", len(all.Paths))
	}
	if _, err := m.RunWithCache(fx.Ints(t, "p0"), "transformer.h.*.atn"); err == nil {
		t.Error("a pattern that matches nothing must be an error")
	}
}

func TestSkipAndStop(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0")
	// Skipping h.0.mlp with zeros is the zero ablation.
	res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Skip(func(x *g.Node) *g.Node { return g.ZerosLike(x) })
	})
	if err != nil {
		t.Fatal(err)
	}
	d, s := logitsOf(t, res)
	fx.Compare(t, "p0/ablate/transformer.h.0.mlp/logits", d, s, tol)

	res, err = m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.attn").Output().Save("a0")
		tr.Stop()
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Logits() != nil {
		t.Error("Stop must end the forward before the logits")
	}
	d, s, _ = res.Float32("a0")
	fx.Compare(t, "p0/transformer.h.0.attn", d, s, tol)
}

func TestCompiledGraphReuse(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	ids := fx.Ints(t, "p0")
	trace := func(scale float32) []float32 {
		res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
			tr.Module("transformer.h.1.mlp").Output().Set(func(x *g.Node) *g.Node {
				return g.Mul(x, tr.Input(scale))
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := logitsOf(t, res)
		return d
	}
	a := trace(1)
	before := m.Engine().Compiles()
	b := trace(0.5)
	c := trace(2)
	if n := m.Engine().Compiles() - before; n != 0 {
		t.Errorf("sweeping a graph input recompiled %d times", n)
	}
	if a[0] == b[0] || b[0] == c[0] {
		t.Error("the scale did not change the logits")
	}
	plain, _ := m.Trace(ids, nil)
	pd, _ := logitsOf(t, plain)
	fx.CompareSlice(t, "scale 1 vs plain", a, pd, 1e-6)
	// A constant captured in the closure is part of the graph: a new value recompiles
	// rather than reusing a program with the old constant.
	before = m.Engine().Compiles()
	for _, f := range []float64{3, 4} {
		res, _ := m.Trace(ids, func(tr *nnsight.Tracer) {
			tr.Module("transformer.h.1.mlp").Output().Set(func(x *g.Node) *g.Node { return g.MulScalar(x, f) })
		})
		d, _ := logitsOf(t, res)
		if d[0] == pd[0] {
			t.Error("constant scale ignored")
		}
	}
	if n := m.Engine().Compiles() - before; n != 2 {
		t.Errorf("two different constants compiled %d programs, want 2", n)
	}
}

func TestScanShapesAndSetValidation(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	ids := fx.Ints(t, "p0")
	s, err := m.Scan(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	// query is c_attn's output split in three, before the head split, as in HF and the seed.
	q := s.Shapes["transformer.h.2.attn.query"].Dims
	if len(q) != 3 || q[0] != 1 || q[1] != len(ids) || q[2] != cfg.NEmbd {
		t.Errorf("query shape %v, want [1 %d %d]", q, len(ids), cfg.NEmbd)
	}
	// Every line says which axis is what, so that a user slicing attn_output knows axis 2 is
	// the heads' features and axis 1 positions.
	T, H, E, V := len(ids), cfg.NHead, cfg.NEmbd, cfg.VocabSize
	for p, want := range map[string]string{
		"transformer.h.2.attn.query":        fmt.Sprintf("[1 %d %d] (batch, pos, embd)", T, E),
		"transformer.h.0.attn.value":        fmt.Sprintf("[1 %d %d] (batch, pos, embd)", T, E),
		"transformer.h.1.attn.attn_weights": fmt.Sprintf("[1 %d %d %d] (batch, head, query_pos, key_pos)", H, T, T),
		"transformer.h.1.attn.attn_output":  fmt.Sprintf("[1 %d %d] (batch, pos, embd)", T, E),
		"transformer.h.1.attn":              fmt.Sprintf("[1 %d %d] (batch, pos, embd)", T, E),
		"transformer.h.1.mlp":               fmt.Sprintf("[1 %d %d] (batch, pos, embd)", T, E),
		"transformer.h.1.ln_2":              fmt.Sprintf("[1 %d %d] (batch, pos, embd)", T, E),
		"transformer.h.1":                   fmt.Sprintf("[1 %d %d] (batch, pos, embd)", T, E),
		"lm_head":                           fmt.Sprintf("[1 %d %d] (batch, pos, vocab)", T, V),
	} {
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(p) + ` +\S+` + regexp.QuoteMeta(want) + `$`)
		if !line.MatchString(s.String()) {
			t.Errorf("scan listing has no line %q ... %q:\n%s", p, want, s)
		}
	}
	for _, p := range s.Order { // and the names fit: one per axis of the value as built
		if sh := s.Shapes[p]; len(sh.Axes) != len(sh.Dims) {
			t.Errorf("%s: %v has axis names %v", p, sh.Dims, sh.Axes)
		}
	}
	wrong := tensors.FromFlatDataAndDimensions(make([]float32, 3), 1, 3)
	_, err = m.Scan(ids, func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.mlp").Output().Set(wrong) })
	if err == nil || !strings.Contains(err.Error(), "[1 3]") || !strings.Contains(err.Error(), "[1 7 32]") {
		t.Errorf("a wrong-shaped Set must name both shapes: %v", err)
	}
}

func TestErrors(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0")
	cases := []struct {
		name string
		fn   func(tr *nnsight.Tracer)
		in   any
		want []string
	}{
		{"wrong path", func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.mpl").Output().Save("x") }, ids,
			[]string{"transformer.h.0.mpl", "transformer.h.0.mlp"}},
		{"wrong label", func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.attn.qurey").Output().Save("x") }, ids,
			[]string{"qurey", "query", "key", "value"}},
		{"panic in closure", func(tr *nnsight.Tracer) { panic("boom") }, ids, []string{"boom"}},
		{"panic in set fn", func(tr *nnsight.Tracer) {
			tr.Module("transformer.h.0").Output().Set(func(x *g.Node) *g.Node { panic("inside") })
		}, ids, []string{"inside"}},
		{"save twice", func(tr *nnsight.Tracer) {
			tr.Module("transformer.h.0").Output().Save("x")
			tr.Module("transformer.h.1").Output().Save("x")
		}, ids, []string{`"x"`, "already"}},
		{"empty prompt", nil, []int{}, []string{"empty"}},
		{"id out of range", nil, []int{1, 600}, []string{"600", "vocab_size=512"}},
		{"too long", nil, make([]int, 40), []string{"40", "n_positions=32"}},
		{"no tokenizer", nil, "hello", []string{"tokenizer"}},
		{"future value", func(tr *nnsight.Tracer) {
			h1 := tr.Module("transformer.h.1").Output()
			tr.Module("transformer.h.0").Output().Set(h1)
		}, ids, []string{"transformer.h.1", "before"}},
		{"empty invoke", func(tr *nnsight.Tracer) { tr.Invoke([]int{}, nil) }, nil, []string{"empty"}},
	}
	for _, c := range cases {
		_, err := m.Trace(c.in, c.fn)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	// The model still works after every error.
	if _, err := m.Trace(ids, nil); err != nil {
		t.Fatal(err)
	}
	// A path valid on one model and not another.
	b, _ := loadTiny(t, "tiny-b")
	if _, err := b.Trace([]int{1, 2, 3}, func(tr *nnsight.Tracer) { tr.Module("transformer.h.2").Output().Save("x") }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("transformer.h.2").Output().Save("x") }); err == nil ||
		!strings.Contains(err.Error(), "transformer.h.2") {
		t.Errorf("h.2 on a 2-layer model: %v", err)
	}
}

func TestModelPrinting(t *testing.T) {
	m, _ := loadTiny(t, "tiny-b")
	s := m.String()
	for _, want := range []string{"GPT2LMHeadModel(", "(h): ModuleList(", "(0-2): 3 x GPT2Block(", "(c_attn): Conv1D(nf=96, nx=32)",
		"(lm_head): Linear(in_features=32, out_features=384, bias=False)"} {
		if !strings.Contains(s, want) {
			t.Errorf("printed model lacks %q:\n%s", want, s)
		}
	}
	if !strings.Contains(m.TreeString(true), "weight: [32 96]") {
		t.Errorf("with shapes:\n%s", m.TreeString(true))
	}
}

func TestSessionStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(nnsight.EnvSessionDir, dir)
	fxDir := filepath.Join("..", "testdata", "gpt2", "tiny-a")
	wrap := edit.New("transformer.h.1.attn", "query", "query_wrapper", edit.Identity())
	cell1 := nnsight.LanguageModel(fxDir, nnsight.WithBackend("go"))
	if err := cell1.LoadEdits(wrap); err != nil {
		t.Fatal(err)
	}
	if err := nnsight.Keep("answer", tensors.FromValue([]float32{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	// A later cell: a new Model value for the same model sees the edit loaded.
	cell2 := nnsight.LanguageModel(fxDir, nnsight.WithBackend("go"))
	res, err := cell2.Trace([]int{1, 2, 3}, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.1.attn.query_wrapper").Output().Save("q")
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, s, _ := res.Float32("q"); len(s) != 3 || s[1] != 3 || s[2] != 16 {
		t.Errorf("query wrapper shape %v, want [1 3 16] (batch, pos, embd)", s)
	}
	v, err := nnsight.Kept("answer")
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := nnsight.Float32(v); len(d) != 3 || d[2] != 3 {
		t.Errorf("kept %v", d)
	}
	if _, err := nnsight.Kept("nope"); err == nil || !strings.Contains(err.Error(), "answer") {
		t.Errorf("missing kept value: %v", err)
	}
	// A store naming a wrapper this cell cannot re-create gets a clear error.
	files, _ := filepath.Glob(filepath.Join(dir, "edits", "*.json"))
	if len(files) != 1 {
		t.Fatalf("edits store %v", files)
	}
	data, _ := os.ReadFile(files[0])
	changed := strings.ReplaceAll(string(data), `"WrapperModule"`, `"UsersOwnWrapper"`)
	if changed == string(data) {
		t.Fatalf("the store does not record the wrapper's kind:\n%s", data)
	}
	os.WriteFile(files[0], []byte(changed), 0o600)
	cell3 := nnsight.LanguageModel(fxDir, nnsight.WithBackend("go"))
	_, err = cell3.Trace([]int{1}, nil)
	if err == nil || !strings.Contains(err.Error(), "ClearEdits") {
		t.Fatalf("an edit that cannot be re-created: %v", err)
	}
	if err := cell3.ClearEdits(); err != nil {
		t.Fatal(err)
	}
	if _, err := cell3.Trace([]int{1}, nil); err != nil {
		t.Fatalf("after ClearEdits: %v", err)
	}
}

func TestLogitLensOfLastLayerIsTheLogits(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
		h := tr.Module("transformer.h.2").Output()
		tr.Compute("lens", func() *g.Node { return tr.LogitLens(h.Node()) })
	})
	if err != nil {
		t.Fatal(err)
	}
	d, s, _ := res.Float32("lens")
	fx.Compare(t, "p0/lm_head", d, s, tol)
}

func TestFusedKernelsKeepEditsExact(t *testing.T) {
	fx := golden.Open(t, "tiny-b")
	fused := nnsight.LanguageModel(fx.Dir, nnsight.WithBackend("go"))
	plain := nnsight.LanguageModel(fx.Dir, nnsight.WithBackend("go"), nnsight.NoFusion())
	ids := fx.Ints(t, "p0")
	run := func(m *nnsight.Model) []float32 {
		res, err := m.Trace(ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := logitsOf(t, res)
		return d
	}
	a, b := run(fused), run(plain)
	fx.CompareSlice(t, "fused vs plain logits", a, b, 1e-5)
	// The fused kernels round differently from the ops they replace: identical bits mean no
	// fused kernel ran.
	if slices.Equal(a, b) {
		t.Error("fused and NoFusion logits are bit-identical: the run used no fused kernel")
	}
	// An edit of an op inside the GELU (its tanh) must act even though runs fuse GELU
	// elsewhere: the edited module keeps its own ops.
	for _, m := range []*nnsight.Model{fused, plain} {
		if err := m.LoadEdits(edit.New("transformer.h.0.mlp.act", "tanh", "tanh_edit", edit.Scale(0))); err != nil {
			t.Fatal(err)
		}
	}
	ea, eb := run(fused), run(plain)
	if nnsight.MaxAbsDiff(ea, a) < 1e-3 {
		t.Fatal("the edit inside mlp.act had no effect with fusion on")
	}
	fx.CompareSlice(t, "edited, fused vs plain", ea, eb, 1e-5)
	if slices.Equal(ea, eb) {
		t.Error("with the edit, fused and NoFusion logits are bit-identical: the modules the edit does not rewrite lost their fused kernels")
	}
}
