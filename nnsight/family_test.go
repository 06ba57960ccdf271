package nnsight_test

// A second model family, defined here with the module package only: a one-layer recurrent
// language model ("TinyRNN") with its own module names (embed, cell, norm, head), an RMSNorm,
// no position embeddings and a generation cache of another layout than GPT-2's (one
// [batch, hidden] state instead of per-layer [batch, heads, maxLen, headDim] keys and values).
// It runs through nnsight's unchanged core (Trace, Invoke, Generate with and without its
// cache) because its root implements module.LanguageModel; the values are checked against
// the same network computed in plain Go.

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/nnsight"
)

const rnnVocab, rnnHidden = 11, 6

// rnnState is the family's cache as one build sees it.
type rnnState struct {
	h, pos *module.Node // [batch, hidden] and the int32 position of the first new token
	maxLen int
	next   *module.Node // the state after this forward (nil until the cell ran)
}

var (
	rnnMask  = module.NewKey[*module.Node]("tinyrnn mask")
	rnnCache = module.NewKey[*rnnState]("tinyrnn state")
)

type tinyRNN struct {
	Embed *module.Embedding
	Cell  *rnnCell
	Norm  *rmsNorm
	Head  *module.Linear
}

func newTinyRNN() *tinyRNN {
	return &tinyRNN{Embed: module.NewEmbedding(rnnVocab, rnnHidden), Cell: &rnnCell{D: rnnHidden},
		Norm: &rmsNorm{D: rnnHidden, Eps: 1e-6}, Head: module.NewLinear(rnnHidden, rnnVocab)}
}

func (m *tinyRNN) TypeName() string { return "TinyRNNForCausalLM" }
func (m *tinyRNN) Children() []module.Child {
	return []module.Child{{Name: "embed", Module: m.Embed}, {Name: "cell", Module: m.Cell},
		{Name: "norm", Module: m.Norm}, {Name: "head", Module: m.Head}}
}
func (m *tinyRNN) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	x := c.Call1("embed", in[0])
	h := c.Call1("cell", x)
	return c.Call("head", c.Call1("norm", h))
}

// module.LanguageModel
func (m *tinyRNN) LMSpec() module.LMSpec {
	return module.LMSpec{VocabSize: rnnVocab, EOSTokenID: -1} // no context limit, no end-of-text token
}
func (m *tinyRNN) BindInputs(c *module.Ctx, in module.LMInputs) []*module.Node {
	rnnMask.Set(c, in.Mask) // positions mean nothing to a recurrence
	if in.Cache != nil {
		rnnCache.Set(c, &rnnState{h: in.Cache.State[0], pos: in.Cache.Pos, maxLen: in.Cache.MaxLen})
	}
	return []*module.Node{in.IDs}
}
func (m *tinyRNN) CacheSlots(batch, maxLen int) []module.CacheSlot {
	return []module.CacheSlot{{Name: "cell's hidden state", Shape: shapes.Make(dtypes.Float32, batch, rnnHidden)}}
}
func (m *tinyRNN) CacheUpdates(c *module.Ctx) []*module.Node {
	return []*module.Node{rnnCache.Get(c).next}
}

// rnnCell is h' = tanh(x W_in + h W_rec + b) over the sequence; a masked token (padding)
// leaves h unchanged.
type rnnCell struct{ D int }

func (r *rnnCell) TypeName() string { return "TinyRNNCell" }
func (r *rnnCell) Params() []module.ParamSpec {
	return []module.ParamSpec{{Name: "w_in", Shape: []int{r.D, r.D}}, {Name: "w_rec", Shape: []int{r.D, r.D}},
		{Name: "bias", Shape: []int{r.D}}}
}
func (r *rnnCell) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	x := in[0]
	gr := x.Graph()
	batch, seq := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	win, wrec, bias := c.Param("w_in"), c.Param("w_rec"), c.Param("bias")
	st := rnnCache.Get(c)
	mask := rnnMask.Get(c) // [batch, seq], or [batch, maxLen] with the cache
	h := g.Zeros(gr, shapes.Make(dtypes.Float32, batch, r.D))
	if st != nil {
		h = st.h
		if mask != nil {
			// The mask covers every cache position: pick the columns pos ... pos+seq-1.
			at := g.Add(g.Iota(gr, shapes.Make(dtypes.Int32, seq, st.maxLen), 0), st.pos)
			onehot := g.ConvertDType(g.Equal(g.Iota(gr, shapes.Make(dtypes.Int32, seq, st.maxLen), 1), at), dtypes.Float32)
			mask = g.GreaterThan(module.MatMulLast(g.ConvertDType(mask, dtypes.Float32), onehot, 1), g.Scalar(gr, dtypes.Float32, 0.5))
		}
	}
	var outs []*module.Node
	for t := 0; t < seq; t++ {
		xt := g.Reshape(g.Slice(x, g.AxisRange(), g.AxisRange(t, t+1), g.AxisRange()), batch, r.D)
		hn := g.Tanh(g.Add(g.Add(module.MatMulLast(xt, win, 0), module.MatMulLast(h, wrec, 0)), g.ExpandLeftToRank(bias, 2)))
		if mask != nil {
			valid := g.BroadcastToDims(g.Reshape(g.Slice(mask, g.AxisRange(), g.AxisRange(t, t+1)), batch, 1), batch, r.D)
			hn = g.Where(valid, hn, h)
		}
		h = hn
		outs = append(outs, g.Reshape(h, batch, 1, r.D))
	}
	if st != nil {
		st.next = h
	}
	return []*module.Node{g.Concatenate(outs, 1)}
}

// rmsNorm is LLaMA's RMSNorm: x / sqrt(mean(x^2) + eps) * weight.
type rmsNorm struct {
	D   int
	Eps float64
}

func (n *rmsNorm) TypeName() string { return "RMSNorm" }
func (n *rmsNorm) Params() []module.ParamSpec {
	return []module.ParamSpec{{Name: "weight", Shape: []int{n.D}}}
}
func (n *rmsNorm) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	x := in[0]
	ms := g.ReduceAndKeep(g.Square(x), g.ReduceMean, -1)
	inv := c.Label("inv_rms", g.Rsqrt(g.AddScalar(ms, n.Eps)))
	return []*module.Node{g.Mul(g.Mul(x, inv), g.ExpandLeftToRank(c.Param("weight"), x.Rank()))}
}

// rnnWeights are random weights, kept as float64 for the plain-Go reference.
type rnnWeights map[string][]float64

func newRNNWeights(seed int64) rnnWeights {
	rng := rand.New(rand.NewSource(seed))
	sizes := map[string]int{"embed.weight": rnnVocab * rnnHidden, "cell.w_in": rnnHidden * rnnHidden,
		"cell.w_rec": rnnHidden * rnnHidden, "cell.bias": rnnHidden, "norm.weight": rnnHidden,
		"head.weight": rnnVocab * rnnHidden, "head.bias": rnnVocab}
	w := rnnWeights{}
	names := make([]string, 0, len(sizes))
	for name := range sizes {
		names = append(names, name)
	}
	slices.Sort(names) // a fixed order of draws: the same seed, the same weights
	for _, name := range names {
		n := sizes[name]
		std := 1.0
		if strings.HasSuffix(name, "bias") {
			std = 0.1 // a large head bias would make one token win everywhere
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(float32(rng.NormFloat64() * std)) // exactly representable in float32
		}
		w[name] = v
	}
	return w
}

func (w rnnWeights) model() *nnsight.Model {
	dims := map[string][]int{"embed.weight": {rnnVocab, rnnHidden}, "cell.w_in": {rnnHidden, rnnHidden},
		"cell.w_rec": {rnnHidden, rnnHidden}, "cell.bias": {rnnHidden}, "norm.weight": {rnnHidden},
		"head.weight": {rnnVocab, rnnHidden}, "head.bias": {rnnVocab}}
	ts := map[string]*tensors.Tensor{}
	for name, v := range w {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		ts[name] = tensors.FromFlatDataAndDimensions(f, dims[name]...)
	}
	return nnsight.New(newTinyRNN(), nnsight.WithWeights(ts), nnsight.WithBackend("go"))
}

// logits computes the network in plain Go: the logits at every position of ids.
func (w rnnWeights) logits(ids []int) [][]float64 {
	d := rnnHidden
	h := make([]float64, d)
	var out [][]float64
	for _, id := range ids {
		hn := make([]float64, d)
		for j := 0; j < d; j++ {
			s := w["cell.bias"][j]
			for i := 0; i < d; i++ {
				s += w["embed.weight"][id*d+i]*w["cell.w_in"][i*d+j] + h[i]*w["cell.w_rec"][i*d+j]
			}
			hn[j] = math.Tanh(s)
		}
		h = hn
		ms := 0.0
		for _, x := range h {
			ms += x * x
		}
		inv := 1 / math.Sqrt(ms/float64(d)+1e-6)
		lg := make([]float64, rnnVocab)
		for v := range lg {
			lg[v] = w["head.bias"][v]
			for j := 0; j < d; j++ {
				lg[v] += h[j] * inv * w["norm.weight"][j] * w["head.weight"][v*d+j]
			}
		}
		out = append(out, lg)
	}
	return out
}

func (w rnnWeights) greedy(ids []int, n int) []int {
	seq := append([]int(nil), ids...)
	var out []int
	for range n {
		lg := w.logits(seq)
		next := argmax64(lg[len(lg)-1])
		out = append(out, next)
		seq = append(seq, next)
	}
	return out
}

func argmax64(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// rowLogits returns the logits of row r at position p of a [batch, seq, vocab] result.
func rowLogits(t *testing.T, res *nnsight.Result, r, p int) []float32 {
	t.Helper()
	data, dims, err := nnsight.Float32(res.Logits())
	if err != nil {
		t.Fatal(err)
	}
	off := (r*dims[1] + p) * dims[2]
	return data[off : off+dims[2]]
}

func closeTo(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i])-want[i]) > 1e-4 {
			t.Fatalf("%s: value %d is %v, the plain-Go network gives %v\ngot  %v\nwant %v", what, i, got[i], want[i], got, want)
		}
	}
}

func TestSecondFamilyTrace(t *testing.T) {
	w := newRNNWeights(7)
	m := w.model()
	prompt := []int{3, 1, 4, 1, 5}
	res, err := m.Trace(prompt, func(tr *nnsight.Tracer) {
		tr.Module("cell").Output().Save("cell")
		tr.Module("norm.inv_rms").Output().Save("inv_rms")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := w.logits(prompt)
	for p := range prompt {
		closeTo(t, "logits at position "+string(rune('0'+p)), rowLogits(t, res, 0, p), want[p])
	}
	if _, dims, err := res.Float32("cell"); err != nil || !slices.Equal(dims, []int{1, len(prompt), rnnHidden}) {
		t.Errorf("saved cell output: dims %v, err %v; want [1 %d %d]", dims, err, len(prompt), rnnHidden)
	}
	if _, dims, err := res.Float32("inv_rms"); err != nil || !slices.Equal(dims, []int{1, len(prompt), 1}) {
		t.Errorf("saved norm.inv_rms: dims %v, err %v", dims, err)
	}
	// The family's token checks come from its LMSpec.
	if _, err := m.Trace([]int{1, rnnVocab}, nil); err == nil || !strings.Contains(err.Error(), "vocab_size=11") {
		t.Errorf("an id past the family's vocabulary: err %v, want one naming vocab_size=11", err)
	}
}

func TestSecondFamilyInvokes(t *testing.T) {
	w := newRNNWeights(8)
	m := w.model()
	a, b := []int{2, 7, 1, 8}, []int{9, 3}
	// Two invokes of different lengths (b is left-padded and its padding masked), the second
	// with its normed state zeroed: its logits are then the head's bias at every position.
	res, err := m.Trace(nil, func(tr *nnsight.Tracer) {
		tr.Invoke(a, func(iv *nnsight.Tracer) { iv.Module("cell").Output().Save("cell_a") })
		tr.Invoke(b, func(iv *nnsight.Tracer) {
			iv.Module("norm").Output().Set(func(x *g.Node) *g.Node { return g.ZerosLike(x) })
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	wa := w.logits(a)
	for p := range a {
		closeTo(t, "invoke 0's logits", rowLogits(t, res, 0, p), wa[p])
	}
	last := len(a) - 1 // b sits at the right end of its left-padded row
	closeTo(t, "invoke 1's logits with norm zeroed", rowLogits(t, res, 1, last), w["head.bias"])
	if _, dims, _ := res.Float32("cell_a"); !slices.Equal(dims, []int{1, len(a), rnnHidden}) {
		t.Errorf("invoke 0's saved cell output has dims %v, want its own row only [1 %d %d]", dims, len(a), rnnHidden)
	}
	// Without the intervention, the padded row's last logits are b's own, unpadded.
	res, err = m.Trace([][]int{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wb := w.logits(b)
	closeTo(t, "padded row's last logits", rowLogits(t, res, 1, last), wb[len(b)-1])
}

func TestSecondFamilyGenerateWithItsCache(t *testing.T) {
	w := newRNNWeights(15) // a seed whose greedy continuations use many tokens (checked below)
	m := w.model()
	prompts := [][]int{{1, 2, 3, 4, 5}, {6, 0}}
	distinct := map[int]bool{}
	for _, p := range prompts {
		for _, id := range w.greedy(p, 6) {
			distinct[id] = true
		}
	}
	if len(distinct) < 5 {
		t.Fatalf("the reference continuations use %d tokens only: too easy to match by accident", len(distinct))
	}
	const n = 6
	shapesAt := map[bool][]int{} // the cell output's length at step 1, with and without the cache
	save := func(cached bool) func(tr *nnsight.Tracer) {
		return func(tr *nnsight.Tracer) {
			if tr.Step() == 1 {
				tr.Module("cell").Output().Save("cell1")
			}
		}
	}
	gens := map[bool]*nnsight.Generation{}
	for _, cached := range []bool{true, false} {
		var opts []nnsight.GenOption
		if !cached {
			opts = append(opts, nnsight.NoCache())
		}
		gen, err := m.Generate(prompts, n, save(cached), opts...)
		if err != nil {
			t.Fatalf("cache %v: %v", cached, err)
		}
		gens[cached] = gen
		_, dims, err := nnsight.Float32(gen.Saved.List("cell1")[0])
		if err != nil {
			t.Fatal(err)
		}
		shapesAt[cached] = dims
	}
	// The cached step computes the new token only; without the cache, every position.
	if !slices.Equal(shapesAt[true], []int{2, 1, rnnHidden}) || !slices.Equal(shapesAt[false], []int{2, 6, rnnHidden}) {
		t.Errorf("step 1's cell output: %v with the cache, %v without; want [2 1 %d] and [2 6 %d]",
			shapesAt[true], shapesAt[false], rnnHidden, rnnHidden)
	}
	for i, p := range prompts {
		want := w.greedy(p, n)
		// The same greedy loop through the model: a full trace per token.
		seq := append([]int(nil), p...)
		var viaTraces []int
		for range n {
			res, err := m.Trace(seq, nil)
			if err != nil {
				t.Fatal(err)
			}
			next := argmax32(rowLogits(t, res, 0, len(seq)-1))
			viaTraces = append(viaTraces, next)
			seq = append(seq, next)
		}
		for cached, gen := range gens {
			if !slices.Equal(gen.NewTokens[i], want) {
				t.Errorf("prompt %d, cache %v: generated %v, the plain-Go greedy loop gives %v", i, cached, gen.NewTokens[i], want)
			}
		}
		if !slices.Equal(viaTraces, want) {
			t.Errorf("prompt %d: repeated traces give %v, the plain-Go greedy loop %v", i, viaTraces, want)
		}
	}
}

func TestSecondFamilyCacheSlotSkippedThenReadIsAnError(t *testing.T) {
	m := newRNNWeights(10).model()
	_, err := m.Generate([]int{1, 2}, 3, func(tr *nnsight.Tracer) {
		if tr.Step() == 1 {
			tr.Module("cell").Skip(func(x *g.Node) *g.Node { return x })
		}
	})
	if err == nil || !strings.Contains(err.Error(), "cell's hidden state was not written at step 1") {
		t.Fatalf("err = %v; want one naming the family's cache slot and the step that skipped it", err)
	}
	// Skipped at every step, the cache is never read after a skip: no error.
	if _, err := m.Generate([]int{1, 2}, 3, func(tr *nnsight.Tracer) {
		tr.Module("cell").Skip(func(x *g.Node) *g.Node { return x })
	}); err != nil {
		t.Fatalf("skipping the cell at every step: %v", err)
	}
}

func argmax32(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// noCacheRNN is the same family without a generation cache (CacheSlots returns nil).
type noCacheRNN struct{ *tinyRNN }

func (noCacheRNN) CacheSlots(batch, maxLen int) []module.CacheSlot { return nil }

func TestSecondFamilyWithoutACacheGeneratesByRecomputing(t *testing.T) {
	w := newRNNWeights(15)
	base := w.model()
	if err := base.Load(); err != nil {
		t.Fatal(err)
	}
	m := nnsight.New(noCacheRNN{newTinyRNN()}, nnsight.WithWeights(base.Weights()), nnsight.WithBackend("go"))
	prompt := []int{1, 2, 3, 4, 5}
	gen, err := m.Generate(prompt, 5, func(tr *nnsight.Tracer) {
		if tr.Step() == 1 {
			tr.Module("cell").Output().Save("cell1")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := w.greedy(prompt, 5); !slices.Equal(gen.NewTokens[0], want) {
		t.Errorf("generated %v, the plain-Go greedy loop gives %v", gen.NewTokens[0], want)
	}
	if _, dims, _ := nnsight.Float32(gen.Saved.List("cell1")[0]); !slices.Equal(dims, []int{1, 6, rnnHidden}) {
		t.Errorf("step 1's cell output has dims %v: without a cache every position is recomputed, want [1 6 %d]", dims, rnnHidden)
	}
}

// Scan builds the family's graph on a sample input of its own vocabulary.
func TestSecondFamilyScan(t *testing.T) {
	m := newRNNWeights(15).model()
	res, err := m.Scan(nil, func(*nnsight.Tracer) {}) // no input: the sample input
	if err != nil {
		t.Fatal(err)
	}
	sh, err := res.Shape("cell")
	if err != nil || len(sh.Dims) != 3 || sh.Dims[2] != rnnHidden {
		t.Errorf("Scan: cell's shape %v, err %v", sh, err)
	}
}
