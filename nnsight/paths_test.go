package nnsight_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/nnsight"
)

// A glob's "*" stays within one segment: "transformer.h.*" is the blocks, not every value
// inside them (it used to match everything below transformer.h).
func TestGlobStarStaysInOneSegment(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b") // 3 layers
	ids := fx.Ints(t, "p0")
	s, err := m.Scan(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	blocks := []string{"transformer.h.0", "transformer.h.1", "transformer.h.2"}
	if got := s.Match("transformer.h.*"); !slices.Equal(got, blocks) {
		t.Errorf("Scan Match(transformer.h.*) = %v, want %v", got, blocks)
	}
	// "**": everything inside block 0, not the block itself.
	var inside []string
	for _, p := range s.Order {
		if strings.HasPrefix(p, "transformer.h.0.") {
			inside = append(inside, p)
		}
	}
	slices.Sort(inside)
	if got := s.Match("transformer.h.0.**"); len(inside) < 10 || !slices.Equal(got, inside) {
		t.Errorf("transformer.h.0.** matched %v, want %v", got, inside)
	}
	c, err := m.RunWithCache(ids, "transformer.h.*")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Paths, blocks) {
		t.Fatalf("RunWithCache(transformer.h.*) cached %v, want %v", c.Paths, blocks)
	}
	for _, p := range c.Paths {
		d, sh, _ := c.Float32(p)
		fx.Compare(t, "p0/"+p, d, sh, tol)
	}
	// "**" reaches labelled values at any depth.
	w, err := m.RunWithCache(ids, "**.attn_weights")
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Paths) != 3 || w.Paths[2] != "transformer.h.2.attn.attn_weights" {
		t.Errorf("**.attn_weights cached %v", w.Paths)
	}
}

// Stacking values of different shapes is an error naming both, not a wrong shape.
func TestCacheStackChecksShapes(t *testing.T) {
	m, fx := loadTiny(t, "tiny-b")
	c, err := m.RunWithCache(fx.Ints(t, "p0"), "transformer.h.*", "transformer.h.0.attn.attn_weights")
	if err != nil {
		t.Fatal(err)
	}
	_, hs := fx.Tensor(t, "p0/transformer.h.0")
	_, ws := fx.Tensor(t, "p0/transformer.h.0.attn.attn_weights")
	_, _, err = c.Stack("transformer.h.0", "transformer.h.0.attn.attn_weights")
	if !errors.Is(err, nnsight.ErrShape) {
		t.Fatalf("stacking %v with %v: %v, want ErrShape", hs, ws, err)
	}
	for _, want := range []string{`"transformer.h.0"`, `"transformer.h.0.attn.attn_weights"`, fmt.Sprint(hs), fmt.Sprint(ws)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// Same shapes stack in order, and any spelling of a cached path finds it.
	d, s, err := c.Stack("transformer.h.0", "transformer.h[1]", "transformer.h.-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s, append([]int{3}, hs...)) {
		t.Fatalf("stacked shape %v", s)
	}
	n := len(d) / 3
	for i := range 3 {
		fx.Compare(t, fmt.Sprintf("p0/transformer.h.%d", i), d[i*n:(i+1)*n], s[1:], tol)
	}
	if _, _, err := c.Stack("transformer.ln_f"); !errors.Is(err, nnsight.ErrUnknownPath) || !strings.Contains(err.Error(), "transformer.h.0") {
		t.Errorf("a path not in the cache: %v", err)
	}
}

func TestNegativeIndexInEveryPath(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a") // 2 layers: -1 is block 1
	ids := fx.Ints(t, "p0")
	res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h[-1].mlp").Output().Save("mlp")
		tr.Module("transformer.h.-2").Output().Save("h0")
		tr.Module("transformer.h[-1].attn.query").Output().Save("q")
		tr.Module("transformer.h.-1").Input().Save("in")
		// The last position of block 1's output.
		tr.Module("transformer.h.-1").Output().At(1, -1, 0).Save("last")
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]string{"mlp": "p0/transformer.h.1.mlp", "h0": "p0/transformer.h.0",
		"q": "p0/transformer.h.1.attn.query", "in": "p0/input/transformer.h.1"} {
		d, s, _ := res.Float32(name)
		fx.Compare(t, key, d, s, tol)
	}
	want, ws := fx.Tensor(t, "p0/transformer.h.1")
	hidden := ws[2]
	last, ls, _ := res.Float32("last")
	if !slices.Equal(ls, []int{1, 1, hidden}) {
		t.Fatalf("At(1, -1, 0) has shape %v", ls)
	}
	fx.CompareSlice(t, "last position", last, want[(ws[1]-1)*hidden:], tol)

	// Graph, RunWithCache (the key is spelled as given).
	g1, err := m.Graph("transformer.h[-1].mlp.c_proj")
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := m.Graph("transformer.h.1.mlp.c_proj")
	if g1.Table() != g2.Table() || !strings.Contains(g1.Table(), "dot_general") {
		t.Errorf("Graph(h[-1]) differs from Graph(h.1)")
	}
	c, err := m.RunWithCache(ids, "transformer.h.-1.mlp")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Paths, []string{"transformer.h.-1.mlp"}) {
		t.Fatalf("cache keys %v", c.Paths)
	}
	d, s, _ := c.Float32("transformer.h.-1.mlp")
	fx.Compare(t, "p0/transformer.h.1.mlp", d, s, tol)

	// An edit's parent resolves when the edit is loaded.
	if err := m.LoadEdits(edit.New("transformer.h[-1].attn", "value", "value_edit", edit.Scale(1000))); err != nil {
		t.Fatal(err)
	}
	defer m.ClearEdits()
	if p := m.Edits()[0].Parent; p != "transformer.h.1.attn" {
		t.Errorf("loaded edit's parent %q", p)
	}
	res, err = m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("transformer.h.-1.attn.value_edit").Output().Save("v") })
	if err != nil {
		t.Fatal(err)
	}
	d, s = logitsOf(t, res)
	fx.Compare(t, "p0/edit_value_x1000/transformer.h.1.attn/logits", d, s, tol)

	// Out of range: the error names the valid range.
	for _, p := range []string{"transformer.h[-3]", "transformer.h.2.mlp"} {
		_, err := m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module(p).Output().Save("x") })
		if !errors.Is(err, nnsight.ErrOutOfRange) || !strings.Contains(err.Error(), "0..1") || !strings.Contains(err.Error(), "-2..-1") {
			t.Errorf("Module(%q): %v", p, err)
		}
	}
	if _, err := m.Graph("transformer.h[-3]"); !errors.Is(err, nnsight.ErrOutOfRange) {
		t.Errorf("Graph(h[-3]): %v", err)
	}
	if _, err := m.RunWithCache(ids, "transformer.h.-3.mlp"); err == nil {
		t.Error("RunWithCache(h.-3.mlp) matched something")
	}
	if err := m.LoadEdits(edit.New("transformer.h[-3].attn", "value", "v2", edit.Identity())); !errors.Is(err, nnsight.ErrOutOfRange) ||
		!errors.Is(err, nnsight.ErrBadEdit) {
		t.Errorf("edit on h[-3]: %v", err)
	}
}

func TestAtOutOfRange(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0") // 7 tokens
	for name, fn := range map[string]func(p *nnsight.Proxy) *nnsight.Proxy{
		"axis 3 of a rank-3 value": func(p *nnsight.Proxy) *nnsight.Proxy { return p.At(3, 0, 1) },
		"position 7 of 7":          func(p *nnsight.Proxy) *nnsight.Proxy { return p.At(1, 7, 8) },
		"position -8 of 7":         func(p *nnsight.Proxy) *nnsight.Proxy { return p.At(1, -8, 0) },
	} {
		_, err := m.Trace(ids, func(tr *nnsight.Tracer) { fn(tr.Module("transformer.h.0").Output()).Save("x") })
		if !errors.Is(err, nnsight.ErrOutOfRange) || !strings.Contains(err.Error(), "At(") {
			t.Errorf("%s: %v, want ErrOutOfRange", name, err)
		}
	}
}

func TestRename(t *testing.T) {
	_, fx := loadTiny(t, "tiny-a")
	dir := filepath.Join("..", "testdata", "gpt2", "tiny-a")
	m := nnsight.LanguageModel(dir, nnsight.WithBackend("go"), nnsight.Rename(map[string]string{"transformer.h": "layers", "mlp": "ffn"}))
	ids := fx.Ints(t, "p0")
	res, err := m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("layers.0.ffn").Output().Save("ffn0")
		tr.Module("transformer.h.1.ffn.c_fc").Output().Save("fc1")
		tr.Module("layers[-1].attn.query").Output().Save("q1")
		tr.Module("layers.0").Output().Save("h0")
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]string{"ffn0": "p0/transformer.h.0.mlp", "fc1": "p0/transformer.h.1.mlp.c_fc",
		"q1": "p0/transformer.h.1.attn.query", "h0": "p0/transformer.h.0"} {
		d, s, _ := res.Float32(name)
		fx.Compare(t, key, d, s, tol)
	}
	// Skip through an alias is the zero ablation of transformer.h.0.mlp.
	res, err = m.Trace(ids, func(tr *nnsight.Tracer) {
		tr.Module("layers.0.ffn").Skip(func(x *g.Node) *g.Node { return g.ZerosLike(x) })
	})
	if err != nil {
		t.Fatal(err)
	}
	d, s := logitsOf(t, res)
	fx.Compare(t, "p0/ablate/transformer.h.0.mlp/logits", d, s, tol)
	// Set through an alias, in an invoke.
	res, err = m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(ids, func(iv *nnsight.Tracer) {
			iv.Module("layers.0.ffn").Output().Set(func(x *g.Node) *g.Node { return g.ZerosLike(x) })
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	d, s = logitsOf(t, res)
	fx.Compare(t, "p0/ablate/transformer.h.0.mlp/logits", d, s, tol)
	// Graph and RunWithCache: keys spelled as the pattern spells them.
	if _, err := m.Graph("layers.-1.ffn.c_proj"); err != nil {
		t.Error(err)
	}
	c, err := m.RunWithCache(ids, "layers.*.ffn", "transformer.h.1.ffn.c_fc")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Paths) != "[layers.0.ffn layers.1.ffn transformer.h.1.ffn.c_fc]" {
		t.Fatalf("cache keys %v", c.Paths)
	}
	for key, golden := range map[string]string{"layers.0.ffn": "p0/transformer.h.0.mlp", "layers.1.ffn": "p0/transformer.h.1.mlp",
		"transformer.h.1.ffn.c_fc": "p0/transformer.h.1.mlp.c_fc"} {
		d, s, err := c.Float32(key)
		if err != nil {
			t.Fatal(err)
		}
		fx.Compare(t, golden, d, s, tol)
	}
	// An edit's parent through an alias.
	if err := m.LoadEdits(edit.New("layers.-1.attn", "value", "value_edit", edit.Scale(1000))); err != nil {
		t.Fatal(err)
	}
	res, err = m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("layers.1.attn.value_edit").Output().Save("v") })
	m.ClearEdits()
	if err != nil {
		t.Fatal(err)
	}
	d, s = logitsOf(t, res)
	fx.Compare(t, "p0/edit_value_x1000/transformer.h.1.attn/logits", d, s, tol)
	// Errors show the path as the user wrote it.
	_, err = m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("layers.0.attn.qurey").Output().Save("x") })
	if !errors.Is(err, nnsight.ErrUnknownPath) || !strings.Contains(err.Error(), `"layers.0.attn.qurey"`) {
		t.Errorf("a wrong label under an alias: %v", err)
	}
	_, err = m.Trace(ids, func(tr *nnsight.Tracer) { tr.Module("layers.0.fnn.c_fc").Output().Save("x") })
	if !errors.Is(err, nnsight.ErrUnknownPath) || !strings.Contains(err.Error(), `"layers.0.fnn.c_fc"`) {
		t.Errorf("a wrong module under an alias: %v", err)
	}
	// Default save names are spelled as written; an in-trace cache answers every spelling.
	var c2 *nnsight.Cache
	res, err = m.Trace(ids, func(tr *nnsight.Tracer) {
		c2 = tr.Cache("transformer.h.*.mlp")
		tr.Module("layers.-1.ffn").Output().Save()
		tr.Module("layers.0.attn.query").Output().Save()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.Names()); !strings.Contains(got, "layers.-1.ffn.output") || !strings.Contains(got, "layers.0.attn.query") {
		t.Errorf("default save names %s, want the spelling used", got)
	}
	for _, p := range []string{"transformer.h.1.mlp", "layers.1.ffn", "layers.-1.ffn", "transformer.h.-1.mlp"} {
		d, s, err := c2.Float32(p)
		if err != nil {
			t.Fatal(err)
		}
		fx.Compare(t, "p0/transformer.h.1.mlp", d, s, tol)
	}
	// A rename that names no module is an error when the model loads.
	bad := nnsight.LanguageModel(dir, nnsight.WithBackend("go"), nnsight.Rename(map[string]string{"transformer.layers": "x"}))
	if err := bad.Load(); !errors.Is(err, nnsight.ErrUnknownPath) || !strings.Contains(err.Error(), "transformer.layers") {
		t.Errorf("rename of a missing module: %v", err)
	}
}

// Every kind of user error is recognisable with errors.Is, and keeps its message.
func TestErrorKinds(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	ids := fx.Ints(t, "p0")
	trace := func(fn func(tr *nnsight.Tracer)) error { _, err := m.Trace(ids, fn); return err }
	wrong := tensors.FromFlatDataAndDimensions(make([]float32, 3), 1, 3)
	cases := []struct {
		name string
		err  error
		kind error
		want string
	}{
		{"unknown module", trace(func(tr *nnsight.Tracer) { tr.Module("transformer.hh.0.mlp").Output().Save("x") }),
			nnsight.ErrUnknownPath, "transformer.hh.0.mlp"},
		{"unknown label", trace(func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.attn.qurey").Output().Save("x") }),
			nnsight.ErrUnknownPath, "qurey"},
		{"path index", trace(func(tr *nnsight.Tracer) { tr.Module("transformer.h.5").Output().Save("x") }),
			nnsight.ErrOutOfRange, "0..1"},
		{"At axis", trace(func(tr *nnsight.Tracer) { tr.Module("transformer.h.0").Output().At(-4, 0, 1).Save("x") }),
			nnsight.ErrOutOfRange, "axis out of range"},
		{"Set shape", trace(func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.mlp").Output().Set(wrong) }),
			nnsight.ErrShape, "[1 3]"},
		{"Set region shape", trace(func(tr *nnsight.Tracer) {
			tr.Module("transformer.h.0.mlp").Output().At(1, 0, 2).Set(func(x *g.Node) *g.Node { return g.Slice(x, g.AxisRange(), g.AxisRange(0, 1)) })
		}), nnsight.ErrShape, "shape"},
		{"edit node", m.LoadEdits(edit.New("transformer.h.0.attn", "qurey", "w", edit.Identity())), nnsight.ErrBadEdit, "qurey"},
		{"edit parent", m.LoadEdits(edit.New("transformer.h.0.atn", "query", "w", edit.Identity())), nnsight.ErrBadEdit, "transformer.h.0.atn"},
		{"edit parent is a path error too", m.LoadEdits(edit.New("transformer.h.0.atn", "query", "w", edit.Identity())),
			nnsight.ErrUnknownPath, "transformer.h.0.atn"},
		{"edit wrapper name", m.LoadEdits(edit.New("transformer.h.0", "attn", "mlp", edit.Identity())), nnsight.ErrBadEdit, `"mlp"`},
		{"edit changes shape", m.LoadEdits(edit.New("transformer.h.0.attn", "query", "w",
			nnsight.Fn1("half", func(x *g.Node) *g.Node { return g.Slice(x, g.AxisRange(), g.AxisRange(0, 1)) }))),
			nnsight.ErrShape, "keep the shape"},
		{"edit changes shape is a bad edit", m.LoadEdits(edit.New("transformer.h.0.attn", "query", "w",
			nnsight.Fn1("half", func(x *g.Node) *g.Node { return g.Slice(x, g.AxisRange(), g.AxisRange(0, 1)) }))),
			nnsight.ErrBadEdit, "keep the shape"},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !errors.Is(c.err, c.kind) {
			t.Errorf("%s: %q is not %v", c.name, c.err, c.kind)
		}
		if !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %q does not mention %s", c.name, c.err, c.want)
		}
	}
	// Kinds do not leak: a shape error is not a path error.
	if err := trace(func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.mlp").Output().Set(wrong) }); errors.Is(err, nnsight.ErrUnknownPath) {
		t.Errorf("a shape error reads as an unknown path: %v", err)
	}
	if len(m.Edits()) != 0 {
		t.Errorf("failed LoadEdits left edits loaded: %v", m.Edits())
	}
}

// An edit declared with a negative index or an alias is found again by a later notebook cell
// (a new process that declares it again the same way).
func TestResolvedEditPersistsAcrossCells(t *testing.T) {
	t.Setenv(nnsight.EnvSessionDir, t.TempDir())
	dir := filepath.Join("..", "testdata", "gpt2", "tiny-a")
	rename := nnsight.Rename(map[string]string{"transformer.h": "layers"})
	wrap := edit.New("layers[-1].attn", "query", "query_wrapper", edit.Identity())
	cell1 := nnsight.LanguageModel(dir, nnsight.WithBackend("go"), rename)
	if err := cell1.LoadEdits(wrap); err != nil {
		t.Fatal(err)
	}
	cell2 := nnsight.LanguageModel(dir, nnsight.WithBackend("go"), rename)
	res, err := cell2.Trace([]int{1, 2, 3}, func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.1.attn.query_wrapper").Output().Save("q")
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, s, _ := res.Float32("q"); len(s) != 3 || s[1] != 3 { // [batch, pos, embd]
		t.Errorf("query wrapper shape %v", s)
	}
	if err := cell2.ClearEdits(); err != nil {
		t.Fatal(err)
	}
}

// A value named by the user (a TransformerLens input name, a label) is saved under that name
// by default, not under the model's own path.
func TestDefaultSaveNameOfANamedValue(t *testing.T) {
	m, fx := loadTiny(t, "tiny-a")
	res, err := m.Trace(fx.Ints(t, "p0"), func(tr *nnsight.Tracer) {
		tr.Module("blocks.1.hook_resid_pre").Output().Save()
		tr.Module("blocks.0.attn.hook_pattern").Output().Save()
		tr.Module("transformer.h.0").Input().Save()
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"blocks.1.hook_resid_pre", "blocks.0.attn.hook_pattern", "transformer.h.0.input"} {
		if res.Get(want) == nil {
			t.Errorf("no value saved as %q; saved: %v", want, res.Names())
		}
	}
	d, s, _ := res.Float32("blocks.1.hook_resid_pre")
	fx.Compare(t, "p0/input/transformer.h.1", d, s, tol)
}
