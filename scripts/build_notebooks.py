#!/usr/bin/env python3
"""Writes the tutorial notebooks in notebooks/ from the cells below (source of truth), with
empty outputs. `gonnsight run` then executes them and writes the outputs in place:
    python3 scripts/build_notebooks.py && for n in notebooks/0*.ipynb; do gonnsight run "$n" --out "$n"; done
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "notebooks")

PARAMS = '''// Parameters (papermill style: `gonnsight run NOTEBOOK -p modelName=openai-community/gpt2`).
// The default is a small GPT-2 trained on the Brown Corpus that ships with gonnsight
// (models/brown-gpt2), so the notebook runs anywhere, offline; "gonnsight/tiny-gpt2" is a
// random tiny one; "openai-community/gpt2" loads the real model from the Hugging Face cache or hub.
var modelName = "gonnsight/brown-gpt2"'''

IMPORTS = '''import (
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/gonnsight/gonnsight/display"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/experiments"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
	"github.com/gonnsight/gonnsight/tensor"
)

// must stops the cell when err is not nil: it prints the error and the cell fails (so a
// headless run stops there too).
func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}'''


def md(src):
    return {"cell_type": "markdown", "metadata": {}, "source": src.strip("\n")}


def code(src, tags=None):
    meta = {"tags": tags} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [], "source": src.strip("\n")}


def notebook(cells):
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Go (gonnsight)", "language": "go", "name": "gonnsight"},
            # nbconvert, GitHub and Jupyter pick the highlighter from these (GoNB itself leaves
            # pygments_lexer and codemirror_mode empty; `gonnsight run` fills them the same way).
            "language_info": {"name": "go", "pygments_lexer": "go", "codemirror_mode": "go",
                              "file_extension": ".go", "mimetype": "text/x-go"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def split_source(nb):
    for c in nb["cells"]:
        lines = c["source"].split("\n")
        c["source"] = [l + "\n" for l in lines[:-1]] + [lines[-1]]
    return nb


WALKTHROUGH = [
    md('''
# Edit walkthrough: nnsight's *Edit* in Go

This is the seed notebook of gonnsight, section by section: nnsight's draft used TorchDynamo to
capture a module's forward as an FX graph, printed it, and inserted *wrapper* and *edit* modules
at any intermediate value. gonnsight does the same on GoMLX graphs: a module's forward builds a
graph, which we capture, print and rewrite.

Each cell runs as a new Go program (that is how GoNB works); declarations (`import`, `type`,
`var`, `func`) persist from cell to cell, and so do loaded edits.
'''),
    code(PARAMS, tags=["parameters"]),
    code(IMPORTS),
    md('''
## 1. A toy model and its captured graph

`M` runs a `Linear(1, 1)`, then a `WrappedLayer` (another `Linear(1, 1)` whose output is
multiplied by 100), a `Dropout`, and splits the result in rows. Modules are Go values: a
`Forward` that calls its children through the context `c`, so every call is recorded.
'''),
    code('''
// WrappedLayer multiplies its Linear layer's output by 100.
type WrappedLayer struct{ Layer *module.Linear }

func (w *WrappedLayer) Children() []module.Child { return []module.Child{{Name: "layer", Module: w.Layer}} }
func (w *WrappedLayer) Forward(c *module.Ctx, in ...*ops.Node) []*ops.Node {
	return []*ops.Node{ops.MulScalar(c.Call1("layer", in[0]), 100)}
}

// M is the seed's toy model.
type M struct {
	Layer1  *module.Linear
	Layer2  *WrappedLayer
	Dropout *module.Dropout
}

func (m *M) Children() []module.Child {
	return []module.Child{{Name: "layer1", Module: m.Layer1}, {Name: "layer2", Module: m.Layer2}, {Name: "dropout", Module: m.Dropout}}
}
func (m *M) Forward(c *module.Ctx, in ...*ops.Node) []*ops.Node {
	x := c.Call1("layer1", in[0])
	x = c.Call1("layer2", x)
	x = c.Call1("dropout", x)
	return module.Split(c, x, 0, 2)
}

var toy = nnsight.New(&M{module.NewLinear(1, 1), &WrappedLayer{module.NewLinear(1, 1)}, &module.Dropout{P: 0.5}},
	nnsight.WithSeed(0), nnsight.WithExampleInput([][]float32{{1}, {2}}))
'''),
    md('''
Printing the model shows its module tree. `Graph` captures the forward of a module (here the
root, `""`) as a table with torch.fx's columns: `placeholder` for inputs, `get_attr` for
parameters, `call_function` for operations, `call_module` for children that did no work of
their own (the dropout, off at inference), and `output`.
'''),
    code('''
%%
fmt.Println(toy)
gr, err := toy.Graph("")
must(err)
display.ShowGraph(gr)
'''),
    md('''
With `edit.Folded()` each child is one `call_module` row, as when Dynamo does not inline:
'''),
    code('''
%%
gr, err := toy.Graph("", edit.Folded())
must(err)
display.ShowGraph(gr)
'''),
    md('''
## 2. Explain

`torch._dynamo.explain` counted graphs and graph breaks. A GoMLX forward is always one graph:
Go code between operations runs while the graph is built, so nothing breaks it.
'''),
    code('''
%%
_, err := edit.Explain(toy, nil, nil)
must(err)
'''),
    md('''
## 3. Wrapping an intermediate value

The second toy model computes `value = x[:, 0:1]` and returns `x * value`. `c.Label` names the
intermediate, so it shows in the graph as `value`. An *edit* inserts a module right after it and
rewires every use of `value` to the module's output; `edit.Identity()` (the seed's
`WrapperModule`) changes nothing but makes the value a module whose input and output can be
traced.
'''),
    code('''
// M2 is the seed's second model: x * x[:, 0:1].
type M2 struct{}

func (M2) Forward(c *module.Ctx, in ...*ops.Node) []*ops.Node {
	x := in[0]
	value := c.Label("value", ops.Slice(x, ops.AxisRange(), ops.AxisRange(0, 1)))
	return []*ops.Node{ops.Mul(x, ops.BroadcastToDims(value, x.Shape().Dimensions...))}
}

var toyInput = [][]float32{{1, 2, 3}, {4, 5, 6}}
var toy2 = nnsight.New(M2{}, nnsight.WithExampleInput(toyInput))
var valueWrapper = edit.New("", "value", "value_wrapper", edit.Identity())
'''),
    code('''
%%
gr, err := toy2.Graph("")
must(err)
display.ShowGraph(gr)
must(toy2.LoadEdits(valueWrapper))
fmt.Println(toy2)
'''),
    md('''
The edit stays loaded in later cells. The wrapper is traced like any module:
'''),
    code('''
%%
res, err := toy2.Trace(toyInput, func(t *nnsight.Tracer) {
	t.Module("value_wrapper").Input().Save("value_wrapper.input")
	t.Module("value_wrapper").Output().Save("value_wrapper.output")
})
must(err)
fmt.Println("value_wrapper input:", res.Tensor("value_wrapper.input"))
fmt.Println("model output (unchanged by the identity wrapper):", res.Tensor("output.0"))
toy2.ClearEdits()
'''),
    md('''
## 4. GPT-2: wrap `query`, scale `value` by 1000

`transformer.h.3.attn` labels its `query`, `key` and `value`: `c_attn`'s output split in three,
`[batch, pos, embd]`, before the head split, as in Hugging Face's forward and the seed (whose
printed `query` is 3-D). The first edit wraps `query` with an identity; the second is
the seed's `EditModule`: it multiplies `value` by 1000. Edits are values: declared once, loaded
with `LoadEdits`, listed with `Edits`, removed with `ClearEdits`.
'''),
    code('''
var model = nnsight.LanguageModel(modelName)
var prompt = "The Eiffel Tower is in the city of"
var queryWrapper = edit.New("transformer.h.3.attn", "query", "query_wrapper", edit.Identity())
var valueEdit = edit.New("transformer.h.3.attn", "value", "value_edit", edit.Scale(1000))
'''),
    code('''
%%
fmt.Println("model:", modelName)
fmt.Println("backend:", model.Backend())
res, err := model.Trace(prompt, nil)
must(err)
// Kept values survive to later cells (each cell is a new process).
must(nnsight.Keep("baseline_logits", res.Logits()))
logits := res.Tensor("logits") // [batch, pos, vocab]: a tensor.Tensor, with its axis names
display.ShowTopK(display.TopKOf(logits.At(0, -1), 5), model.Tokenizer().TokenString)
'''),
    code('''
%%
must(model.LoadEdits(queryWrapper, valueEdit))
fmt.Println(model)
'''),
    md('''
A later cell: the edits are still loaded. The session store re-creates wrappers that are data
(`edit.Identity()`, `edit.Scale(f)`); a wrapper that is Go code (`nnsight.Fn1(...)`) is loaded
again in each later cell that traces with it, and a trace without it is an error naming it.
`query_wrapper` is a module now, so its output can be saved; the ×1000 `value` changes the logits.
'''),
    code('''
%%
fmt.Println("loaded edits:", model.Edits())
res, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	t.Module("transformer.h.3.attn.query_wrapper").Output().Save("query")
})
must(err)
fmt.Println("query_wrapper output shape [batch pos embd]:", res.Tensor("query").Shape())
base, err := nnsight.Kept("baseline_logits")
must(err)
change := res.Tensor("logits").Sub(tensor.From(base)).Abs().Max()
fmt.Printf("max |logit change| with value x 1000: %.4g\\n", change.Item())
'''),
    code('''
%%
model.ClearEdits()
res, err := model.Trace(prompt, nil)
must(err)
base, err := nnsight.Kept("baseline_logits")
must(err)
change := res.Tensor("logits").Sub(tensor.From(base)).Abs().Max()
fmt.Printf("after ClearEdits, max |logit change|: %g\\n", change.Item())
'''),
    md('''
## 5. `print_gm` of `transformer.h.3.mlp.c_proj`

The seed ended by printing the graph module of one GPT-2 layer. The same, with shapes, and the
readable form (one line per node):
'''),
    code('''
%%
gr, err := model.Graph("transformer.h.3.mlp.c_proj")
must(err)
display.ShowGraph(gr)
fmt.Print(gr.Code())
'''),
]


TRACE = [
    md('''
# Trace and save: reading and writing a model's activations

`model.Trace(input, func(t))` runs the model once with the interventions the function
registers: `Save` keeps a value, `Set` replaces it, `Skip` replaces a whole module, `Invoke`
adds prompts to the batch. Everything compiles into one graph; nothing runs in Go between
layers.
'''),
    code(PARAMS, tags=["parameters"]),
    code(IMPORTS),
    code('''
var model = nnsight.LanguageModel(modelName)
var prompt = "The Eiffel Tower is in the city of"
'''),
    md('''
## Saving

Paths are the model's own names (`transformer.h.5.mlp`, also `transformer.h[5].mlp`);
labelled values inside attention (`query`, `key`, `value`, `attn_weights`, `attn_output`)
are addressed the same way.
'''),
    code('''
%%
fmt.Println("model:", modelName, "| backend:", model.Backend())
res, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	t.Module("transformer.h.1.mlp").Output().Save("mlp1")
	t.Module("transformer.h[1].attn.attn_weights").Output().Save("weights1")
	t.Hidden().Save("hidden")
})
must(err)
for _, name := range res.Names() {
	x := res.Tensor(name)
	fmt.Printf("%-10s %v %v\\n", name, x.Shape(), x.Axes())
}
'''),
    md('''
## Setting

`Set` takes a function of the current value, a tensor, a number, or another saved proxy. `At`
narrows to a slice of one axis (`Scan` below says which axis is what). Here: zero the MLP of
layer 0, and only the last position (axis 1, `pos`) of layer 1's output. In `attn_output`,
`[batch, pos, embd]` with the heads side by side on `embd`, head `h` is
`At(2, h*headDim, (h+1)*headDim)`; `At(1, ...)` would be positions.
'''),
    code('''
%%
base, err := model.Trace(prompt, nil)
must(err)
ablated, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	t.Module("transformer.h.0.mlp").Output().Set(func(x *ops.Node) *ops.Node { return ops.ZerosLike(x) })
	t.Module("transformer.h.1").Output().At(1, -1, 0).Set(0.0)
})
must(err)
change := ablated.Tensor("logits").Sub(base.Tensor("logits")).Abs().Max()
fmt.Printf("max |logit change| after the ablations: %.4g\\n", change.Item())
'''),
    md('''
## Invokes: several prompts in one run

Each invoke has its own rows; prompts of different lengths are left-padded with an attention
mask, so each prompt's results equal running it alone.
'''),
    code('''
%%
res, err := model.Trace(nil, func(t *nnsight.Tracer) {
	t.Invoke("The capital of France is", func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("france") })
	t.Invoke("Hello", func(iv *nnsight.Tracer) { iv.Logits().At(1, -1, 0).Save("hello") })
})
must(err)
fmt.Println("batch ids (left-padded):", res.Batch.IDs)
alone, err := model.Trace("Hello", nil)
must(err)
lastAlone := alone.Tensor("logits").Slice(1, -1, 0) // [batch, last pos, vocab], as saved in the batch
fmt.Printf("'Hello' in the batch vs alone, max |diff|: %.2g\\n", res.Tensor("hello").Sub(lastAlone).Abs().Max().Item())
tok := model.Tokenizer()
fmt.Printf("greedy next tokens: %q, %q\\n", tok.TokenString(res.Tensor("france").ArgMax(-1).Int()), tok.TokenString(res.Tensor("hello").ArgMax(-1).Int()))
'''),
    md('''
## Generation with interventions

The function runs once per step; `t.Step()` says which (0 is the forward over the prompt).
Values saved at each step come back as a list.
'''),
    code('''
%%
gen, err := model.Generate(prompt, 5, func(t *nnsight.Tracer) {
	t.Logits().At(1, -1, 0).Save("next")
	if t.Step() == 2 {
		t.Module("transformer.h.0.mlp").Output().Set(func(x *ops.Node) *ops.Node { return ops.ZerosLike(x) })
	}
})
must(err)
fmt.Printf("%q -> %q\\n", prompt, gen.Text[0])
next := tensor.Stack(gen.Saved.TensorList("next"), 0) // [step, batch, pos, vocab]
fmt.Println("steps saved:", next.Shape(), "greedy token per step:", next.ArgMax(-1).Reshape(-1).Ints())
'''),
    md('''
## Gradients

`Backward` names a scalar built from saved values; `Grad()` of any value is saved like any other.
'''),
    code('''
%%
res, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	logits := t.Logits()
	t.Module("transformer.h.1").Output().Grad().Save("grad")
	london, washington := model.Tokenizer().Encode(" London")[0], model.Tokenizer().Encode(" Washington")[0]
	t.Backward(func() *ops.Node { return ops.LogitDiff(logits.Node(), 0, london, washington) })
})
must(err)
g := res.Tensor("grad") // [batch, pos, embd]
fmt.Println("gradient of the logit difference w.r.t. layer 1's output:", g.Shape(), "max |g| =", g.Abs().Max().Item())
fmt.Println("its norm at each position:", g.Norm(g.Axis("embd")))
'''),
    md('''
## Scan

`Scan` builds the graph without running it: every module output and labelled value with its
shape and what each axis is.
'''),
    code('''
%%
s, err := model.Scan(prompt, nil)
must(err)
for _, p := range s.Match("transformer.h.0.**") {
	fmt.Printf("%-32s %v\\n", p, s.Shapes[p])
}
'''),
]

ATTENTION = [
    md('''
# Attention patterns

Every attention module labels its softmaxed weights `attn_weights`:
`[batch, head, query_pos, key_pos]`. The default model is a 4-layer GPT-2 trained on the
Brown Corpus (`models/brown-gpt2`); the second half of this notebook looks for an induction
head, by its attention pattern and by patching, and says what it finds on this model.
'''),
    code(PARAMS, tags=["parameters"]),
    code(IMPORTS),
    code('''
var model = nnsight.LanguageModel(modelName)
var prompt = "The jury said that the city of Atlanta had a primary election, and the jury"
'''),
    code('''
%%
fmt.Println("model:", modelName, "| backend:", model.Backend())
cache, err := model.RunWithCache(prompt, "transformer.h.*.attn.attn_weights")
must(err)
w := cache.Tensor("transformer.h.0.attn.attn_weights") // [batch, head, query_pos, key_pos]
tokens := cache.Batch.Tokens[0]
fmt.Println("layer 0 attention:", w.Shape(), w.Axes())
display.ShowAttentionHead(w.Data(), w.Dim(w.Axis("head")), w.Dim(w.Axis("query_pos")), tokens, 0, display.Layer(0))
// Where the last token looks: per head, the key position with the largest weight.
for h, k := range w.At(0).Index(1, -1).ArgMax(-1).Ints() {
	fmt.Printf("head %d: last token attends most to %q (position %d)\\n", h, tokens[k], k)
}
'''),
    md('''
All heads of the last layer, as small multiples:
'''),
    code('''
%%
cfg := model.Config()
path := fmt.Sprintf("transformer.h.%d.attn.attn_weights", cfg.NLayer-1)
res, err := model.Trace(prompt, func(t *nnsight.Tracer) { t.Module(path).Output().Save("w") })
must(err)
display.ShowAttentionOf(res.Tensor("w"), res.Batch.Tokens[0], display.Layer(cfg.NLayer-1))
'''),
    md('''
## An induction head, by its attention pattern

Random tokens, then the same tokens again. From the second copy on, a model that has learnt to
copy predicts each next token by finding the earlier occurrence of the current token and
reading what followed it: an *induction head* attends from position `i` of the second copy to
position `i − n + 1` (the token after the earlier occurrence), a stripe `n − 1` below the
diagonal. A *previous-token head* (the stripe just below the diagonal) usually feeds it from an
earlier layer. The score of a head is its mean attention on its stripe.
'''),
    code('''
%%
n := 30
rng := rand.New(rand.NewPCG(3, 4))
vocab := model.Config().VocabSize
seq := []int{model.Tokenizer().EOS()} // <|endoftext|> first, as a document start
for range n {
	seq = append(seq, 100+rng.IntN(vocab-200)) // neither bytes nor the rarest merges
}
seq = append(seq, seq[1:]...)
cache, err := model.RunWithCache(seq, "transformer.h.*.attn.attn_weights")
must(err)
cfg := model.Config()
var ind, prev []*tensor.Tensor
for l := range cfg.NLayer {
	w := cache.Tensor(fmt.Sprintf("transformer.h.%d.attn.attn_weights", l)).At(0) // [head, query, key]
	ind = append(ind, w.Diagonal(1-n).Slice(-1, 2, n+2).Mean(-1)) // element i: query i+n-1 -> key i; queries of the second copy
	prev = append(prev, w.Diagonal(-1).Mean(-1))
}
induction, previous := tensor.Stack(ind, 0), tensor.Stack(prev, 0) // [layer, head]
rows := make([]string, cfg.NLayer)
for l := range rows {
	rows[l] = fmt.Sprint(l)
}
display.ShowHeatmapOf(induction, rows, nil, "induction score: mean attention to the token after the earlier copy",
	display.Axes("layer", "head"), display.ValueTitle("induction score"), display.Min(0), display.Max(1))
best := induction.Reshape(-1).ArgMax(0).Int()
bl, bh := best/cfg.NHead, best%cfg.NHead
fmt.Printf("best induction head: layer %d head %d, score %.3f\\n", bl, bh, induction.At(bl, bh).Item())
bp := previous.Reshape(-1).ArgMax(0).Int()
fmt.Printf("best previous-token head: layer %d head %d, score %.3f\\n", bp/cfg.NHead, bp%cfg.NHead, previous.At(bp/cfg.NHead, bp%cfg.NHead).Item())
tokens := cache.Batch.Tokens[0]
w := cache.Tensor(fmt.Sprintf("transformer.h.%d.attn.attn_weights", bl))
display.ShowAttentionHead(w.Data(), cfg.NHead, len(seq), tokens, bh, display.Layer(bl))
'''),
    md('''
## The same head, by patching

Clean: the random tokens, then the first ten of them again: the next token is the eleventh.
Corrupted: other random tokens first, then the same ten, so there is nothing to copy. Patching
each head's output from the clean run into the corrupted one (all positions) and measuring the
log-probability of the eleventh token finds the heads that do the copying.
'''),
    code('''
%%
n, k := 30, 10
rng := rand.New(rand.NewPCG(3, 4))
vocab := model.Config().VocabSize
draw := func() []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 100 + rng.IntN(vocab-200)
	}
	return s
}
a, b := draw(), draw()
eos := model.Tokenizer().EOS()
clean := append(append([]int{eos}, a...), a[:k]...)
corrupted := append(append([]int{eos}, b...), a[:k]...)
metric := experiments.LogProb(a[k])
heads, err := experiments.PatchHeads(model, clean, corrupted, metric)
must(err)
heads.Show()
fmt.Printf("log p(next) clean %.3f, corrupted %.3f\\n", heads.Clean, heads.Corrupt)
cfg := model.Config()
top := heads.Tensor().Reshape(-1).ArgMax(0).Int()
fmt.Printf("patching layer %d head %d restores most: log p(next) %.3f\\n", top/cfg.NHead, top%cfg.NHead, heads.At(top/cfg.NHead, top%cfg.NHead))
'''),
    md('''
What is real and what is an artefact of the small model: the method is the one that finds
induction heads in real models (run this notebook with `-p modelName=openai-community/gpt2`
where its weights are available: GPT-2 small's induction heads are well documented, Olsson et
al. 2022). The default model did not form an induction head in its training budget, although
its training repeated segments to encourage one (`models/brown-gpt2/README.md`: its loss on
the second copy of a random sequence is hardly lower than on the first; `docs/induction.md`
measures why: GPT-2's tied output layer and a 4096-token vocabulary keep a model this small on
the plateau before induction far longer than its budget). So here the scores
stay near the uniform level, and the head that patching picks is noise; do not read a circuit
into them.
'''),
]

PATCHING = [
    md('''
# Activation patching

A task the default model (a small GPT-2 trained on the Brown Corpus) does well: after "The
President of the United" it predicts " States", after "The President of the New" it predicts
" York". For every layer and position we copy the clean residual stream ("United") into the
corrupted run ("New") and measure how much of the logit difference " States" − " York" comes
back. What the maps show is real and is the whole story for this model: the answer lives in
the last token's own residual stream at every layer (the model answers from the last token,
like a bigram table), and patching any earlier position changes nothing, because no layer moves
information about the last word between positions. In a model with induction or name-mover
heads (GPT-2 small with `-p modelName=openai-community/gpt2` and a task such as indirect object
identification) the restoring position moves from the source token to the last one across the
layers; the default model has no such heads (`models/brown-gpt2/README.md`).

`experiments.PatchResidual` does the whole sweep in one call: one batched forward whose rows
each patch their own (layer, position), with the metric computed in the graph. The last cell
writes the same sweep by hand with traces and invokes, to show what happens underneath.
'''),
    code(PARAMS, tags=["parameters"]),
    code(IMPORTS),
    code('''
var model = nnsight.LanguageModel(modelName)
var clean = "The President of the United"
var corrupted = "The President of the New"
var right, wrong = " States", " York"
'''),
    code('''
%%
fmt.Println("model:", modelName, "| backend:", model.Backend())
tok := model.Tokenizer()
rightID, wrongID := tok.Encode(right)[0], tok.Encode(wrong)[0] // the right and the wrong answer
metric := experiments.LogitDiff(rightID, wrongID)
r, err := experiments.PatchResidual(model, clean, corrupted, metric)
must(err)
r.Show()
fmt.Printf("clean %.3f, corrupted %.3f\\n", r.Clean, r.Corrupt)
diff := r.Tensor() // [layer, pos]
for L, P := range diff.ArgMax(-1).Ints() {
	fmt.Printf("layer %d: patching %q restores most (logit diff %.3f)\\n", L, r.Cols[P], diff.At(L, P).Item())
}
'''),
    md('''
Which heads matter? Patch each head's output (all positions) from the clean run, and
compare with attribution patching: the first-order estimate from one forward and one backward
pass, instead of one forward per head.
'''),
    code('''
%%
tok := model.Tokenizer()
metric := experiments.LogitDiff(tok.Encode(right)[0], tok.Encode(wrong)[0])
heads, err := experiments.PatchHeads(model, clean, corrupted, metric)
must(err)
heads.Show()
approx, err := experiments.AttributionPatchHeads(model, clean, corrupted, metric)
must(err)
approx.Show()
// How well the estimate tracks the real effect (patched - corrupted), over all heads.
effect := heads.Tensor().Sub(heads.Corrupt).Reshape(-1)
fmt.Printf("cosine(attribution patching, activation patching) over heads: %.3f\\n",
	tensor.CosineSim(approx.Tensor().Reshape(-1), effect, 0).Item())
'''),
    md('''
A residual sweep by hand, here of each block's *output* (`experiments.ResidPost` in the
one-call form): each patch is one trace with two invokes (clean and corrupted). The patched position is a graph *input* (a one-hot mask given to `t.Input`), not a
constant of the program, so the sweep compiles one program per layer instead of one per
(layer, position).
'''),
    code('''
%%
fmt.Println("model:", modelName, "| backend:", model.Backend())
tok := model.Tokenizer()
rightID, wrongID := tok.Encode(right)[0], tok.Encode(wrong)[0] // the right and the wrong answer
nLayer := model.Config().NLayer
nPos := len(tok.Encode(clean))
var diffs []*tensor.Tensor // one logit difference per (layer, position)
for L := 0; L < nLayer; L++ {
	layer := fmt.Sprintf("transformer.h.%d", L)
	for P := 0; P < nPos; P++ {
		mask := tensor.Eye(nPos).At(P).Reshape(1, nPos, 1) // [batch 1, position, 1]: 1 at the patched position
		res, err := model.Trace(nil, func(t *nnsight.Tracer) {
			var src *nnsight.Proxy
			t.Invoke(clean, func(iv *nnsight.Tracer) { src = iv.Module(layer).Output() })
			t.Invoke(corrupted, func(iv *nnsight.Tracer) {
				iv.Module(layer).Output().Set(func(x *ops.Node) *ops.Node {
					m := iv.Input(mask)
					return ops.Add(x, ops.Mul(m, ops.Sub(src.Node(), x))) // x + mask * (clean - x)
				})
				iv.Compute("diff", func() *ops.Node { return ops.LogitDiff(iv.Logits().Node(), 0, rightID, wrongID) })
			})
		})
		must(err)
		diffs = append(diffs, res.Tensor("diff"))
	}
}
diff := tensor.Stack(diffs, 0).Reshape(nLayer, nPos)
var rows, cols []string
for L := 0; L < nLayer; L++ {
	rows = append(rows, fmt.Sprintf("layer %d", L))
}
for _, id := range tok.Encode(clean) {
	cols = append(cols, tok.TokenString(id))
}
display.ShowHeatmapOf(diff, rows, cols, "logit diff (States - York) after patching the clean residual stream",
	display.Axes("patched layer", "patched position"), display.ValueTitle("logit diff (States - York)"))
for L, P := range diff.ArgMax(-1).Ints() {
	fmt.Printf("layer %d: patching %q restores most (logit diff %.3f)\\n", L, cols[P], diff.At(L, P).Item())
}
fmt.Printf("%d patched runs, compiled programs so far: %d\\n", nLayer*nPos, model.Engine().Compiles())
'''),
]

LENS = [
    md('''
# Logit lens

Apply the final layer norm and the unembedding to every layer's residual stream: what would the
model predict if it stopped at that layer? On the default model (a 4-layer GPT-2 trained on the
Brown Corpus) the answer forms with depth: after "the President of the United" the first two
blocks' outputs decode to the word piece "s", and " States" becomes the top prediction only
after the third block.
'''),
    code(PARAMS, tags=["parameters"]),
    code(IMPORTS),
    code('''
var model = nnsight.LanguageModel(modelName)
var prompt = "He said that the President of the United"
'''),
    code('''
%%
fmt.Println("model:", modelName, "| backend:", model.Backend())
lens, err := experiments.LogitLens(model, prompt)
must(err)
lens.Show() // rows: the embeddings, then after each block
lp := lens.Tensor() // [layer, pos, vocab] log-probabilities
answer := lp.At(-1, -1).ArgMax(-1).Int() // the model's own prediction at the last position
p, err := lens.Prob(answer)
must(err)
p.Show()
fmt.Printf("p(%q) at the last position, by layer: %.2g\\n", model.Tokenizer().TokenString(answer), lp.Index(1, -1).Exp().Index(-1, answer).Data())
'''),
    md('''
By hand, with `t.LogitLens` inside a trace (the final layer norm and the unembedding applied to
each block's output):
'''),
    code('''
%%
cfg := model.Config()
res, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	for L := 0; L < cfg.NLayer; L++ {
		h := t.Module(fmt.Sprintf("transformer.h.%d", L)).Output()
		name := fmt.Sprintf("lens.%d", L)
		t.Compute(name, func() *ops.Node { return t.LogitLens(h.Node()) })
	}
})
must(err)
tok := model.Tokenizer()
var layers []string
var lens []*tensor.Tensor
for L := 0; L < cfg.NLayer; L++ {
	layers = append(layers, fmt.Sprintf("layer %d", L))
	lens = append(lens, res.Tensor(fmt.Sprintf("lens.%d", L)).At(0)) // [pos, vocab]
}
lensLogits := tensor.Stack(lens, 0) // [layer, pos, vocab]
display.ShowLogitLensOf(lensLogits, layers, res.Batch.Tokens[0], tok.TokenString, display.LogShading()) // probabilities span orders of magnitude
// How sure each layer is of the model's final answer at the last position.
answer := res.Tensor("logits").At(0, -1).ArgMax(-1).Int()
pAnswer := lensLogits.Index(1, -1).Softmax(-1).Index(-1, answer) // [layer]
fmt.Printf("p(%q) by layer: %.3f\\n", tok.TokenString(answer), pAnswer.Data())
'''),
    md('''
What is real and what is an artefact of the small model: the prediction forming across layers,
the answer taking the top place only in the later blocks, is what the logit lens shows in large
models too. With only four layers the change is abrupt (one block), and even the last layer
is unsure (a model of 1.3 M parameters trained on 1.6 M tokens): read the ranks and the rise
of p(" States"), not its size.
'''),
]

TLDEMO = [
    md('''
# TransformerLens's main demo, in gonnsight

TransformerLens's *Main Demo* walks through caching activations, attention patterns, hooks,
head ablation, activation patching, direct logit attribution and induction heads. Here is the
same walk in gonnsight: TransformerLens's hook names (`blocks.0.attn.hook_pattern`,
`blocks.3.attn.hook_z`, ...) work wherever a path does, with TransformerLens's layouts and the
values of the unprocessed model (no LayerNorm folding). On the default model (a 4-layer GPT-2
trained on the Brown Corpus, `models/brown-gpt2`) the induction heads and the logit lens have
real structure. The indirect-object task of the middle sections is GPT-2 small's and beyond a
model this small: read the sign of its logit difference before reading the maps, run it with
`-p modelName=openai-community/gpt2` to see GPT-2's name movers, and see notebook 04 for a
copying task this model does.
'''),
    code(PARAMS, tags=["parameters"]),
    code(IMPORTS),
    code('''
var model = nnsight.LanguageModel(modelName)
var prompt = "When Mary and John went to the store, John gave a drink to"
'''),
    md('''
## Caching activations

`run_with_cache` is `RunWithCache`, with patterns over TransformerLens names. Each value is a
tensor that knows what its axes are.
'''),
    code('''
%%
fmt.Println("model:", modelName, "| backend:", model.Backend())
cache, err := model.RunWithCache(prompt, "blocks.*.attn.hook_pattern", "blocks.*.hook_resid_post")
must(err)
pattern := cache.Tensor("blocks.0.attn.hook_pattern")
resid := cache.Tensor("blocks.0.hook_resid_post")
fmt.Println("hook_pattern:", pattern.Shape(), pattern.Axes())
fmt.Println("hook_resid_post:", resid.Shape(), resid.Axes())
display.ShowAttentionOf(pattern, cache.Batch.Tokens[0], display.Layer(0))
'''),
    md('''
## Hooks: ablating a head

A hook that zeroes one head's `hook_z` (`[batch, pos, head, d_head]`) is a `Set` on that
slice. The loss is the mean next-token cross-entropy, computed from the logits with tensor
operations: log-softmax, then each position's log-probability of the token that follows it.
'''),
    code('''
%%
ids := model.Tokenizer().Encode(prompt)
loss := func(res *nnsight.Result) float32 {
	lp := res.Tensor("logits").At(0).LogSoftmax(-1).Slice(0, 0, -1) // [pos-1, vocab]
	return lp.Take(-1, ids[1:]...).Diagonal(0).Mean().Neg().Item()   // log p(next token), averaged
}
clean, err := model.Trace(prompt, nil)
must(err)
layer, head := 0, 1
ablated, err := model.Trace(prompt, func(t *nnsight.Tracer) {
	t.Module(fmt.Sprintf("blocks.%d.attn.hook_z", layer)).Output().At(2, head, head+1).Set(0.0)
})
must(err)
fmt.Printf("loss %.4f, with head %d.%d ablated %.4f\\n", loss(clean), layer, head, loss(ablated))
'''),
    md('''
Every head at once, as one batched sweep (`experiments.AblateHeads`), measured by the logit
difference between the right and the wrong name:
'''),
    code('''
%%
tok := model.Tokenizer()
metric := experiments.LogitDiff(tok.Encode(" Mary")[0], tok.Encode(" John")[0])
abl, err := experiments.AblateHeads(model, prompt, metric, experiments.Zero)
must(err)
abl.Show()
worst := abl.Tensor().Reshape(-1).ArgMin(0).Int()
H := model.Config().NHead
fmt.Printf("unablated logit diff %.3f; ablating layer %d head %d lowers it most (to %.3f)\\n", abl.Clean,
	worst/H, worst%H, abl.At(worst/H, worst%H))
'''),
    md('''
## Activation patching

Clean: the prompt above. Corrupted: the names swapped in the first clause.
'''),
    code('''
%%
corrupted := "When John and Mary went to the store, John gave a drink to"
tok := model.Tokenizer()
metric := experiments.LogitDiff(tok.Encode(" Mary")[0], tok.Encode(" John")[0])
resid, err := experiments.PatchResidual(model, prompt, corrupted, metric)
must(err)
norm, err := resid.Normalized()
must(err)
norm.Show()
attn, err := experiments.Patch(model, experiments.AttnOut, prompt, corrupted, metric)
must(err)
attn.Show()
heads, err := experiments.PatchHeads(model, prompt, corrupted, metric)
must(err)
heads.Show()
'''),
    md('''
## Direct logit attribution

How much each component writes onto the " Mary" − " John" direction at the last position,
through the final layer norm. The parts add up to the model's logit difference.
'''),
    code('''
%%
tok := model.Tokenizer()
dla, err := experiments.DirectLogitAttribution(model, prompt, tok.Encode(" Mary")[0], tok.Encode(" John")[0])
must(err)
dla.Components.Show()
dla.Heads.Show()
sum := dla.Components.Tensor().Sum().Item() + float32(dla.Bias)
fmt.Printf("sum of the parts + ln_f bias = %.4f; the model's logit difference = %.4f\\n", sum, dla.Total)
'''),
    md('''
## Induction heads

A sequence of random tokens repeated twice: an induction head attends from each token of the
second copy to the token after its earlier occurrence, a stripe `n − 1` below the diagonal. The
induction score of a head is its mean attention on that stripe.
'''),
    code('''
%%
n := 20
rng := rand.New(rand.NewPCG(1, 2))
seq := []int{model.Tokenizer().EOS()} // a BOS token first, as TransformerLens prepends
vocab := model.Config().VocabSize
for range n {
	seq = append(seq, 100+rng.IntN(vocab-200)) // neither bytes nor the rarest merges
}
seq = append(seq, seq[1:]...)
cache, err := model.RunWithCache(seq, "blocks.*.attn.hook_pattern")
must(err)
var scores []*tensor.Tensor
for l := range model.Config().NLayer {
	pattern := cache.Tensor(fmt.Sprintf("blocks.%d.attn.hook_pattern", l)).At(0) // [head, query, key]
	scores = append(scores, pattern.Diagonal(1-n).Mean(-1))                        // [head]
}
score := tensor.Stack(scores, 0) // [layer, head]
rows := make([]string, score.Dim(0))
for l := range rows {
	rows[l] = fmt.Sprint(l)
}
display.ShowHeatmapOf(score, rows, nil, "induction score: mean attention to the token after the earlier copy",
	display.Axes("layer", "head"), display.ValueTitle("induction score"), display.Min(0), display.Max(1))
best := score.Reshape(-1).ArgMax(0).Int()
fmt.Printf("best induction score %.3f at layer %d head %d\\n", score.Reshape(-1).At(best).Item(), best/score.Dim(1), best%score.Dim(1))
'''),
    md('''
## Logit lens

The residual stream decoded after every block:
'''),
    code('''
%%
lens, err := experiments.LogitLens(model, prompt)
must(err)
lens.Show()
'''),
]


def main():
    books = {
        "01_edit_walkthrough.ipynb": WALKTHROUGH,
        "02_trace_and_save.ipynb": TRACE,
        "03_attention_patterns.ipynb": ATTENTION,
        "04_activation_patching.ipynb": PATCHING,
        "05_logit_lens.ipynb": LENS,
        "06_transformerlens_demo.ipynb": TLDEMO,
    }
    for name, cells in books.items():
        nb = split_source(notebook(cells))
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(nb, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print("wrote", name)


if __name__ == "__main__":
    main()
