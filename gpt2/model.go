package gpt2

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/module"
)

// Node is a value in the graph being built.
type Node = module.Node

// The build-wide values BindInputs gives GPT-2's modules.
var (
	positionIDs   = module.NewKey[*Node]("gpt2 position ids")   // [batch, seq] int32
	attentionMask = module.NewKey[*Node]("gpt2 attention mask") // [batch, keys] bool, or nil
	kvCache       = module.NewKey[*KVCache]("gpt2 KV cache")    // nil without a cache
)

// KVCache is a fixed-size key/value cache: K[i], V[i] are [batch, heads, maxLen, headDim];
// Pos is the int32 scalar index where the new tokens go. New keys and values are written with
// a one-hot product (no DynamicUpdateSlice, which not every backend has), and the updated
// caches are left in NewK/NewV for the caller to return.
type KVCache struct {
	K, V       []*Node
	Pos        *Node
	NewK, NewV []*Node
}

// LMHeadModel is GPT2LMHeadModel: transformer + lm_head (tied to transformer.wte unless the
// config says tie_word_embeddings false).
type LMHeadModel struct {
	Config      Config
	Transformer *Transformer
	LMHead      *LMHead
}

// New builds the module tree for a config.
func New(cfg Config) *LMHeadModel {
	t := &Transformer{
		WTE:  module.NewEmbedding(cfg.VocabSize, cfg.NEmbd),
		WPE:  module.NewEmbedding(cfg.NPositions, cfg.NEmbd),
		Drop: &module.Dropout{P: 0.1},
		H:    &module.List{},
		LnF:  module.NewLayerNorm(cfg.NEmbd, cfg.LayerNormEpsilon),
	}
	for i := 0; i < cfg.NLayer; i++ {
		t.H.Items = append(t.H.Items, newBlock(cfg, i))
	}
	return &LMHeadModel{Config: cfg, Transformer: t, LMHead: &LMHead{In: cfg.NEmbd, Out: cfg.VocabSize, Untied: !cfg.Tied()}}
}

func (m *LMHeadModel) TypeName() string { return "GPT2LMHeadModel" }
func (m *LMHeadModel) Children() []module.Child {
	return []module.Child{{Name: "transformer", Module: m.Transformer}, {Name: "lm_head", Module: m.LMHead}}
}

// LMSpec is GPT-2's vocabulary, context and end-of-text token (module.LanguageModel).
func (m *LMHeadModel) LMSpec() module.LMSpec {
	return module.LMSpec{VocabSize: m.Config.VocabSize, MaxPositions: m.Config.NPositions, EOSTokenID: m.Config.EOSTokenID}
}

// BindInputs gives the blocks the position ids, the attention mask and the KV cache, and
// returns the token ids for Forward (module.LanguageModel).
func (m *LMHeadModel) BindInputs(c *module.Ctx, in module.LMInputs) []*Node {
	positionIDs.Set(c, in.Positions)
	attentionMask.Set(c, in.Mask)
	if in.Cache != nil {
		n := m.Config.NLayer
		kvCache.Set(c, &KVCache{K: in.Cache.State[:n], V: in.Cache.State[n:], Pos: in.Cache.Pos})
	}
	return []*Node{in.IDs}
}

// CacheSlots are the keys of every layer, then the values of every layer, each
// [batch, heads, maxLen, headDim] (module.LanguageModel).
func (m *LMHeadModel) CacheSlots(batch, maxLen int) []module.CacheSlot {
	cfg := m.Config
	sh := shapes.Make(dtypes.Float32, batch, cfg.NHead, maxLen, cfg.HeadDim())
	out := make([]module.CacheSlot, 0, 2*cfg.NLayer)
	for _, what := range []string{"keys", "values"} {
		for i := 0; i < cfg.NLayer; i++ {
			out = append(out, module.CacheSlot{Name: "transformer.h." + itoa(i) + ".attn's " + what, Shape: sh})
		}
	}
	return out
}

// CacheUpdates returns the caches the attentions wrote, in CacheSlots' order; nil for a
// layer whose attention did not run (module.LanguageModel).
func (m *LMHeadModel) CacheUpdates(c *module.Ctx) []*Node {
	kv := kvCache.Get(c)
	out := make([]*Node, 2*m.Config.NLayer)
	if kv == nil || kv.NewK == nil {
		return out
	}
	copy(out, kv.NewK)
	copy(out[m.Config.NLayer:], kv.NewV)
	return out
}

// Forward takes token ids [batch, seq] (int32) and returns the logits [batch, seq, vocab].
func (m *LMHeadModel) Forward(c *module.Ctx, in ...*Node) []*Node {
	h := c.Call1("transformer", in...)
	return c.Call("lm_head", h)
}

// LMHead projects hidden states onto the vocabulary: with the token embedding (tied
// weights, GPT-2's default) or, when Untied, with its own weight lm_head.weight [vocab, in].
type LMHead struct {
	In, Out int
	Untied  bool
}

func (l *LMHead) TypeName() string { return "Linear" }
func (l *LMHead) Describe() string {
	return "in_features=" + itoa(l.In) + ", out_features=" + itoa(l.Out) + ", bias=False"
}

// Params is lm_head.weight when untied; a tied head owns no parameter.
func (l *LMHead) Params() []module.ParamSpec {
	if !l.Untied {
		return nil
	}
	return []module.ParamSpec{{Name: "weight", Shape: []int{l.Out, l.In}, Init: module.Normal(0.02)}}
}

func (l *LMHead) Forward(c *module.Ctx, in ...*Node) []*Node {
	name, w := "transformer.wte.weight", (*Node)(nil)
	if l.Untied {
		name, w = "lm_head.weight", c.Param("weight")
	} else {
		w = c.ParamAt(name, module.ParamSpec{Name: "weight", Shape: []int{l.Out, l.In}})
	}
	if !module.UseTransposedWeights.Get(c) {
		return []*Node{module.MatMulLast(in[0], w, 1)}
	}
	// With UseTransposedWeights: the [in, vocab] transpose of the unembedding, made once
	// and kept by whoever feeds the weights (module.Transposes):
	// x @ W^T with W [vocab, in] costs the Go backend a repacking of all 50257x768 weights on
	// every call (about 20 ms per forward at 1 token, a fifth of a decoding step) and ONNX
	// Runtime an Einsum instead of a MatMul. The price: 154 MB more memory and one transpose
	// in each process's first trace (docs/performance.md).
	wt := module.TransposedParam(w.Graph(), name, l.Out, l.In, w.DType())
	return []*Node{module.MatMulLast(in[0], wt, 0)}
}

// Transformer is GPT2Model: embeddings, the blocks and the final layer norm.
type Transformer struct {
	WTE, WPE *module.Embedding
	Drop     *module.Dropout
	H        *module.List
	LnF      *module.LayerNorm
}

func (t *Transformer) TypeName() string { return "GPT2Model" }
func (t *Transformer) Children() []module.Child {
	return []module.Child{{Name: "wte", Module: t.WTE}, {Name: "wpe", Module: t.WPE}, {Name: "drop", Module: t.Drop},
		{Name: "h", Module: t.H}, {Name: "ln_f", Module: t.LnF}}
}
func (t *Transformer) Forward(c *module.Ctx, in ...*Node) []*Node {
	ids := in[0]
	pos := positionIDs.Get(c)
	if pos == nil {
		dims := ids.Shape().Dimensions
		pos = g.Iota(ids.Graph(), ids.Shape(), len(dims)-1)
	}
	if t.WPE.Num > 0 && pos.Shape().Dimensions[len(pos.Shape().Dimensions)-1] > t.WPE.Num {
		module.Errorf("sequence of %d tokens is longer than the model's context (n_positions=%d)",
			pos.Shape().Dimensions[1], t.WPE.Num)
	}
	tok := c.Call1("wte", ids)
	p := c.Call1("wpe", pos)
	h := c.Call1("drop", g.Add(tok, p))
	h = c.Call1("h", h)
	return c.Call("ln_f", h)
}

// Block is GPT2Block: pre-norm attention and MLP with residual connections.
type Block struct {
	Ln1  *module.LayerNorm
	Attn *Attention
	Ln2  *module.LayerNorm
	MLP  *MLP
}

func newBlock(cfg Config, layer int) *Block {
	return &Block{
		Ln1: module.NewLayerNorm(cfg.NEmbd, cfg.LayerNormEpsilon),
		Attn: &Attention{Layer: layer, NHead: cfg.NHead, NEmbd: cfg.NEmbd, Scale: cfg.AttentionScale(layer),
			CAttn: module.NewConv1D(cfg.NEmbd, 3*cfg.NEmbd), CProj: module.NewConv1D(cfg.NEmbd, cfg.NEmbd),
			AttnDropout: &module.Dropout{P: 0.1}, ResidDropout: &module.Dropout{P: 0.1}},
		Ln2: module.NewLayerNorm(cfg.NEmbd, cfg.LayerNormEpsilon),
		MLP: &MLP{CFc: module.NewConv1D(cfg.NEmbd, cfg.Inner()), Act: &module.Activation{Kind: cfg.Activation},
			CProj: module.NewConv1D(cfg.Inner(), cfg.NEmbd), Dropout: &module.Dropout{P: 0.1}},
	}
}

func (b *Block) TypeName() string { return "GPT2Block" }
func (b *Block) Children() []module.Child {
	return []module.Child{{Name: "ln_1", Module: b.Ln1}, {Name: "attn", Module: b.Attn}, {Name: "ln_2", Module: b.Ln2},
		{Name: "mlp", Module: b.MLP}}
}
func (b *Block) Forward(c *module.Ctx, in ...*Node) []*Node {
	x := in[0]
	a := c.Call1("attn", c.Call1("ln_1", x))
	x = c.LabelAxes("hook_resid_mid", g.Add(x, a), axesEmbd...)
	m := c.Call1("mlp", c.Call1("ln_2", x))
	return []*Node{g.Add(x, m)}
}

// Attention is GPT2Attention. Its labelled values, with what each axis is:
//
//	query, key, value  [batch, pos, embd]             c_attn's output split in three, before the
//	                                                  head split (as in Hugging Face's forward);
//	                                                  embd is the heads side by side: features
//	                                                  h*head_dim ... (h+1)*head_dim-1 are head h
//	hook_q, hook_k,    [batch, pos, head, d_head]     TransformerLens's per-head views of
//	hook_v                                            query, key, value (after the reshape,
//	                                                  before the transpose: no extra op)
//	hook_attn_scores   [batch, head, query_pos, key_pos]  q.k/sqrt(d_head), masked entries
//	                                                  -inf (TransformerLens's); computed only
//	                                                  when read
//	attn_weights       [batch, head, query_pos, key_pos]  after the mask and softmax
//	                                                  (TransformerLens's hook_pattern)
//	hook_z             [batch, pos, head, d_head]     weights @ value per head, before the merge
//	attn_output        [batch, pos, embd]             heads merged (head h at features
//	                                                  h*head_dim ...), before c_proj
//	hook_result        [batch, pos, head, embd]       each head through its rows of c_proj,
//	                                                  without the bias; computed only when read
//
// So attn_output.At(2, h*head_dim, (h+1)*head_dim) is head h; At(1, ...) would be positions.
// With the KV cache, key_pos counts the cache's slots, not the tokens of this call.
type Attention struct {
	Layer, NHead, NEmbd int
	// Scale divides the scores: Config.AttentionScale (sqrt(head_dim) for GPT-2).
	Scale                     float64
	CAttn, CProj              *module.Conv1D
	AttnDropout, ResidDropout *module.Dropout
}

func (a *Attention) TypeName() string { return "GPT2Attention" }
func (a *Attention) Children() []module.Child {
	return []module.Child{{Name: "c_attn", Module: a.CAttn}, {Name: "c_proj", Module: a.CProj},
		{Name: "attn_dropout", Module: a.AttnDropout}, {Name: "resid_dropout", Module: a.ResidDropout}}
}

func (a *Attention) Forward(c *module.Ctx, in ...*Node) []*Node {
	x := in[0]
	dims := x.Shape().Dimensions
	batch, seq := dims[0], dims[1]
	hd := a.NEmbd / a.NHead
	qkv := c.Call1("c_attn", x)
	part := func(i int) *Node {
		return g.Slice(qkv, g.AxisRange(), g.AxisRange(), g.AxisRange(i*a.NEmbd, (i+1)*a.NEmbd))
	}
	// The labels are the 3-D parts, as Hugging Face's forward and nnsight's Edit see them
	// (an edit of "value" scales this tensor); the head split comes after.
	q := c.LabelAxes("query", part(0), axesEmbd...)
	k := c.LabelAxes("key", part(1), axesEmbd...)
	v := c.LabelAxes("value", part(2), axesEmbd...)
	// [batch, pos, embd] -> [batch, head, pos, head_dim]. The [batch, pos, head, head_dim]
	// step between the reshape and the transpose is TransformerLens's hook_q/k/v: labelling
	// it adds no op.
	heads := func(name string, t *Node) *Node {
		t = c.LabelAxes(name, g.Reshape(t, batch, seq, a.NHead, hd), axesHeads...)
		return g.TransposeAllAxes(t, 0, 2, 1, 3)
	}
	q, k, v = heads("hook_q", q), heads("hook_k", k), heads("hook_v", v)

	gr := x.Graph()
	keyLen := seq
	var valid *Node // [batch or 1, 1, seq, keys] bool
	if cache := kvCache.Get(c); cache != nil {
		k, v, keyLen = cache.update(a.Layer, k, v, seq)
		// Query t sits at absolute position pos+t; key s is visible when s <= pos+t.
		qPos := g.Add(g.Iota(gr, shapeI32(seq, keyLen), 0), cache.Pos)
		kPos := g.Iota(gr, shapeI32(seq, keyLen), 1)
		valid = g.Reshape(g.LessOrEqual(kPos, qPos), 1, 1, seq, keyLen)
	} else {
		qPos := g.Iota(gr, shapeI32(seq, seq), 0)
		kPos := g.Iota(gr, shapeI32(seq, seq), 1)
		valid = g.Reshape(g.LessOrEqual(kPos, qPos), 1, 1, seq, seq)
	}
	if m := attentionMask.Get(c); m != nil {
		valid = g.LogicalAnd(valid, g.Reshape(m, batch, 1, 1, keyLen))
	}
	scores := g.DotGeneral(q, []int{3}, []int{0, 1}, k, []int{3}, []int{0, 1}) // [b, h, seq, keys]
	scale := a.Scale
	if scale == 0 { // an Attention built by hand: GPT-2's
		scale = math.Sqrt(float64(hd))
	}
	scores = g.DivScalar(scores, scale)
	// Masked scores get float32's lowest value, as Hugging Face does, so fully masked rows
	// (padding queries) stay finite.
	dims4 := scores.Shape().Dimensions
	validAll := g.BroadcastToDims(valid, dims4...)
	lowest := g.Scalar(gr, scores.DType(), -math.MaxFloat32)
	masked := g.Where(validAll, scores, g.BroadcastToDims(lowest, dims4...))
	// TransformerLens's hook_attn_scores masks with -inf instead. The label gets that value;
	// the forward goes on with the finite one unless the label is set, so nothing is
	// computed for it when it is not read (unused nodes are not compiled).
	tl := g.Where(validAll, scores, g.BroadcastToDims(g.Scalar(gr, scores.DType(), math.Inf(-1)), dims4...))
	if y := c.LabelAxes("hook_attn_scores", tl, axesAttention...); y != tl {
		masked = g.Max(y, g.BroadcastToDims(lowest, dims4...)) // a set value, -inf made finite
	}
	w := c.LabelAxes("attn_weights", module.Softmax(c, masked, -1), axesAttention...)
	w = c.Call1("attn_dropout", w)
	o := g.DotGeneral(w, []int{3}, []int{0, 1}, v, []int{2}, []int{0, 1}) // [b, h, seq, hd]
	o = c.LabelAxes("hook_z", g.TransposeAllAxes(o, 0, 2, 1, 3), axesHeads...)
	o = g.Reshape(o, batch, seq, a.NEmbd)
	o = c.LabelAxes("attn_output", o, axesEmbd...)
	// TransformerLens's hook_result: each head's share of c_proj's output, without the bias
	// (sum over heads + bias = c_proj's output). Computed only when read; a set value changes
	// the attention's output by the difference it makes.
	wo := c.ParamAt(module.Join(c.Path(), "c_proj.weight"), module.ParamSpec{Name: "weight", Shape: []int{a.NEmbd, a.NEmbd}})
	perHead := g.DotGeneral(g.Reshape(o, batch, seq, a.NHead, hd), []int{3}, []int{2},
		g.Reshape(wo, a.NHead, hd, a.NEmbd), []int{1}, []int{0}) // [head, batch, pos, embd]
	result := g.TransposeAllAxes(perHead, 1, 2, 0, 3)
	y := c.LabelOnDemand("hook_result", result, axesResult...) // not in caches of everything
	o = c.Call1("c_proj", o)
	if y != result {
		o = g.Add(o, g.ReduceSum(g.Sub(y, result), 2))
	}
	return c.Call("resid_dropout", o)
}

// update writes the new keys/values into the layer's cache at Pos and returns the full ones.
func (kv *KVCache) update(layer int, k, v *Node, seq int) (*Node, *Node, int) {
	ck, cv := kv.K[layer], kv.V[layer]
	maxLen := ck.Shape().Dimensions[2]
	gr := k.Graph()
	// onehot[t, s] = 1 where s == pos + t.
	s := g.Iota(gr, shapeI32(seq, maxLen), 1)
	t := g.Add(g.Iota(gr, shapeI32(seq, maxLen), 0), kv.Pos)
	onehot := g.ConvertDType(g.Equal(s, t), k.DType())
	keep := g.OneMinus(g.ReduceSum(onehot, 0)) // [maxLen]
	put := func(cache, x *Node) *Node {
		// placed[b, h, m, :] = x[b, h, m-pos, :]: a batched matmul in the plain layout
		// (MatMul on ONNX Runtime, no transpose of the result on the Go backend).
		d := x.Shape().Dimensions
		oh := g.BroadcastToDims(g.Reshape(g.TransposeAllAxes(onehot, 1, 0), 1, 1, maxLen, seq), d[0], d[1], maxLen, seq)
		placed := g.DotGeneral(oh, []int{3}, []int{0, 1}, x, []int{2}, []int{0, 1}) // [b, h, maxLen, hd]
		return g.Add(g.Mul(cache, g.Reshape(keep, 1, 1, maxLen, 1)), placed)
	}
	nk, nv := put(ck, k), put(cv, v)
	if kv.NewK == nil {
		kv.NewK = make([]*Node, len(kv.K))
		kv.NewV = make([]*Node, len(kv.V))
	}
	kv.NewK[layer], kv.NewV[layer] = nk, nv
	return nk, nv, maxLen
}

// MLP is GPT2MLP: c_fc, activation, c_proj.
type MLP struct {
	CFc     *module.Conv1D
	Act     *module.Activation
	CProj   *module.Conv1D
	Dropout *module.Dropout
}

func (m *MLP) TypeName() string { return "GPT2MLP" }
func (m *MLP) Children() []module.Child {
	return []module.Child{{Name: "c_fc", Module: m.CFc}, {Name: "c_proj", Module: m.CProj}, {Name: "act", Module: m.Act},
		{Name: "dropout", Module: m.Dropout}}
}
func (m *MLP) Forward(c *module.Ctx, in ...*Node) []*Node {
	h := c.Call1("c_fc", in[0])
	h = c.Call1("act", h)
	h = c.Call1("c_proj", h)
	return c.Call("dropout", h)
}

func shapeI32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Int32, dims...) }

var _ module.LanguageModel = (*LMHeadModel)(nil)
