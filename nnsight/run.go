package nnsight

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/engine"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/module"
)

// Result holds what a trace saved, by name.
type Result struct {
	values  map[string]*tensors.Tensor
	lists   map[string][]*tensors.Tensor
	order   []string
	Batch   *Batch
	Backend string
}

// Get returns a saved value (nil if no value has that name).
func (r *Result) Get(name string) *tensors.Tensor { return r.values[name] }

// Value returns a saved value or an error naming the values that exist.
func (r *Result) Value(name string) (*tensors.Tensor, error) {
	if t, ok := r.values[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("no saved value %q; saved: %s", name, strings.Join(r.Names(), ", "))
}

// Float32 returns a saved value's data and shape.
func (r *Result) Float32(name string) ([]float32, []int, error) {
	t, err := r.Value(name)
	if err != nil {
		return nil, nil, err
	}
	return Float32(t)
}

// List returns the per-step values saved under name during Generate.
func (r *Result) List(name string) []*tensors.Tensor { return r.lists[name] }

// Names lists the saved names in the order they were saved.
func (r *Result) Names() []string { return append([]string(nil), r.order...) }

// Logits is the lm_head output [batch, seq, vocab] when the trace computed it.
func (r *Result) Logits() *tensors.Tensor { return r.values["logits"] }

// Float32 copies a float tensor's data out, with its shape.
func Float32(t *tensors.Tensor) ([]float32, []int, error) {
	if t == nil {
		return nil, nil, errors.New("nil tensor")
	}
	if t.DType() != dtypes.Float32 {
		return nil, nil, fmt.Errorf("tensor is %s, not float32", t.DType())
	}
	return tensors.MustCopyFlatData[float32](t), t.Shape().Dimensions, nil
}

// Trace runs the model on input (a prompt string, a []string batch, token ids []int or
// [][]int; a tensor for user-defined models; or nil when fn adds invokes) with the
// interventions fn registers, and returns the saved values. The logits are always saved
// as "logits" (unless Stop ended the forward before them).
func (m *Model) Trace(input any, fn func(t *Tracer)) (*Result, error) {
	if err := m.Load(); err != nil {
		return nil, err
	}
	tr, batch, err := m.prepare(input, fn)
	if err != nil {
		return nil, err
	}
	if m.cfg == nil && input != nil {
		m.example = input
	}
	return m.execute(tr, batch, m.Edits(), nil)
}

func newTrace(m *Model, step int) *trace {
	return &trace{model: m, points: map[pointKey][]*event{}, fired: map[pointKey]bool{},
		inputs: map[string]*tensors.Tensor{}, lists: map[string]bool{}, step: step}
}

// prepare registers a trace's interventions and makes its batch.
func (m *Model) prepare(input any, fn func(t *Tracer)) (*trace, *Batch, error) {
	tr, err := m.register(input, fn, 0)
	if err != nil {
		return nil, nil, err
	}
	batch, err := m.makeBatch(tr)
	if err != nil {
		return nil, nil, err
	}
	return tr, batch, nil
}

// register runs the user's closure, which only records interventions.
func (m *Model) register(input any, fn func(t *Tracer), step int) (*trace, error) {
	tr := newTrace(m, step)
	top := &Tracer{tr: tr}
	if input != nil {
		tr.invokes = append(tr.invokes, &invokeSpec{input: input})
	}
	if fn != nil {
		err := engine.Catch(func() error { fn(top); return nil })
		if err != nil {
			return nil, fmt.Errorf("in the trace function: %w", err)
		}
	}
	if len(tr.invokes) == 0 {
		return nil, errors.New("nothing to run: give Trace an input or call Invoke inside it")
	}
	if len(tr.errs) > 0 {
		return nil, errors.Join(tr.errs...) // one message per line, each keeping its kind
	}
	return tr, nil
}

func (m *Model) describe() string {
	if m.source != "" {
		return fmt.Sprintf("model %q", m.source)
	}
	return module.TypeName(m.root)
}

// Batch is the model input a trace ran on.
type Batch struct {
	IDs       [][]int // padded token ids (language models)
	Mask      [][]bool
	Positions [][]int
	Lengths   []int
	Rows      [][2]int        // rows of each invoke
	Tensor    *tensors.Tensor // user-defined models
	Padded    bool
	Tokens    [][]string
}

// makeBatch tokenizes and pads the invokes' inputs.
func (m *Model) makeBatch(tr *trace) (*Batch, error) {
	b := &Batch{}
	if m.cfg == nil {
		return m.makeTensorBatch(tr)
	}
	var seqs [][]int
	for i, iv := range tr.invokes {
		ids, err := m.toIDs(iv.input)
		if err != nil {
			return nil, fmt.Errorf("invoke %d: %w", i, err)
		}
		iv.ids = ids
		iv.rows = [2]int{len(seqs), len(seqs) + len(ids)}
		b.Rows = append(b.Rows, iv.rows)
		seqs = append(seqs, ids...)
	}
	maxLen := 0
	for _, s := range seqs {
		maxLen = max(maxLen, len(s))
	}
	if maxLen > m.cfg.NPositions {
		return nil, fmt.Errorf("prompt of %d tokens is longer than the model's context (n_positions=%d)", maxLen, m.cfg.NPositions)
	}
	for _, s := range seqs {
		pad := maxLen - len(s)
		row := make([]int, maxLen)
		mask := make([]bool, maxLen)
		pos := make([]int, maxLen)
		if pad > 0 {
			b.Padded = true
		}
		off := pad
		if m.opts.padRight {
			off = 0
		}
		fill := m.cfg.EOSTokenID
		if fill < 0 || fill >= m.cfg.VocabSize {
			fill = 0
		}
		for i := range row {
			row[i] = fill
		}
		for i, id := range s {
			row[off+i] = id
			mask[off+i] = true
			pos[off+i] = i
		}
		b.IDs = append(b.IDs, row)
		b.Mask = append(b.Mask, mask)
		b.Positions = append(b.Positions, pos)
		b.Lengths = append(b.Lengths, len(s))
		if m.tok != nil {
			toks := make([]string, maxLen)
			for i, id := range row {
				if mask[i] {
					toks[i] = m.tok.TokenString(id)
				}
			}
			b.Tokens = append(b.Tokens, toks)
		}
	}
	return b, nil
}

// toIDs turns an invoke's input into one or more token sequences.
func (m *Model) toIDs(input any) ([][]int, error) {
	check := func(ids []int) error {
		if len(ids) == 0 {
			return errors.New("empty prompt: it has no tokens")
		}
		for _, id := range ids {
			if id < 0 || id >= m.cfg.VocabSize {
				return fmt.Errorf("token id %d is out of range (vocab_size=%d)", id, m.cfg.VocabSize)
			}
		}
		return nil
	}
	var out [][]int
	switch v := input.(type) {
	case string:
		if m.tok == nil {
			return nil, fmt.Errorf("%s has no tokenizer: give token ids ([]int)", m.describe())
		}
		out = [][]int{m.tok.Encode(v)}
	case []string:
		if len(v) == 0 {
			return nil, errors.New("empty list of prompts")
		}
		for _, s := range v {
			ids, err := m.toIDs(s)
			if err != nil {
				return nil, err
			}
			out = append(out, ids...)
		}
	case []int:
		out = [][]int{v}
	case [][]int:
		out = v
	case []int32:
		ids := make([]int, len(v))
		for i, x := range v {
			ids[i] = int(x)
		}
		out = [][]int{ids}
	default:
		return nil, fmt.Errorf("unsupported input type %T (want a string, []string, []int or [][]int)", input)
	}
	for _, ids := range out {
		if err := check(ids); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (m *Model) makeTensorBatch(tr *trace) (*Batch, error) {
	b := &Batch{}
	var parts []*tensors.Tensor
	rows := 0
	for i, iv := range tr.invokes {
		t, err := toTensor(iv.input)
		if err != nil {
			return nil, fmt.Errorf("invoke %d: %w", i, err)
		}
		if t.Rank() == 0 {
			return nil, fmt.Errorf("invoke %d: input must have a batch axis, got a scalar", i)
		}
		n := t.Shape().Dimensions[0]
		iv.rows = [2]int{rows, rows + n}
		b.Rows = append(b.Rows, iv.rows)
		rows += n
		parts = append(parts, t)
	}
	if len(parts) == 1 {
		b.Tensor = parts[0]
		return b, nil
	}
	t, err := concatRows(parts)
	if err != nil {
		return nil, err
	}
	b.Tensor = t
	return b, nil
}

func concatRows(parts []*tensors.Tensor) (*tensors.Tensor, error) {
	first := parts[0].Shape()
	var data []float32
	rows := 0
	for i, p := range parts {
		if p.DType() != dtypes.Float32 {
			return nil, fmt.Errorf("invoke %d: input is %s; user-defined models take float32 inputs", i, p.DType())
		}
		if p.Rank() != first.Rank() || !slices.Equal(p.Shape().Dimensions[1:], first.Dimensions[1:]) {
			return nil, fmt.Errorf("invoke %d: input shape %v does not match invoke 0's %v (all but the batch axis must agree)",
				i, p.Shape().Dimensions, first.Dimensions)
		}
		data = append(data, tensors.MustCopyFlatData[float32](p)...)
		rows += p.Shape().Dimensions[0]
	}
	dims := append([]int{rows}, first.Dimensions[1:]...)
	return tensors.FromFlatDataAndDimensions(data, dims...), nil
}

// genState is the extra state of one generation step with the KV cache.
type genState struct {
	cacheK, cacheV []*tensors.Tensor
	pos            int
	newK, newV     []*tensors.Tensor
}

// execute builds the graph of a trace, runs it and collects the saved values.
// buildMeta is what a build tells the code that runs it.
type buildMeta struct {
	fuse      bool // runs may use fused kernels; captures and scans may not
	saveNames []string
	nCache    int
	ctx       *module.Ctx
}

// builder returns the graph-building function of a trace.
func (m *Model) builder(tr *trace, batch *Batch, edits []*edit.Edit, gs *genState, meta *buildMeta) engine.Build {
	return func(gr *g.Graph) ([]*g.Node, error) {
		c := module.NewCtx(gr, nil)
		params := map[string]*Node{}
		c.ParamFn = func(name string, spec module.ParamSpec) *Node {
			if n, ok := params[name]; ok {
				return n
			}
			w, ok := m.weights[name]
			if !ok {
				module.Errorf("no weight for parameter %q", name)
			}
			n := g.Parameter(gr, name, w.Shape())
			params[name] = n
			return n
		}
		tr.ctx = c
		meta.ctx = c
		c.OnRemap(func(mp map[*Node]*Node) { tr.remap(mp) })
		if len(edits) > 0 {
			c.AddHooks(edit.Hooks(edits))
		}
		c.SetValue(gpt2.TransposedLMHead, m.opts.transposedLMHead)
		var edited []string
		for _, e := range edits {
			edited = append(edited, e.Parent)
		}
		c.SetFusion(meta.fuse && !m.opts.noFusion, edited)
		c.AddHooks(tr)
		var input *Node
		if m.cfg != nil {
			bs, seq := len(batch.IDs), len(batch.IDs[0])
			input = g.Parameter(gr, "input_ids", shapes.Make(dtypes.Int32, bs, seq))
			c.SetValue(gpt2.PositionIDs, g.Parameter(gr, "position_ids", shapes.Make(dtypes.Int32, bs, seq)))
			if gs != nil {
				kv := &gpt2.KVCache{Pos: g.Parameter(gr, "cache_pos", shapes.Make(dtypes.Int32))}
				for i := range gs.cacheK {
					kv.K = append(kv.K, g.Parameter(gr, fmt.Sprintf("cache_k.%d", i), gs.cacheK[i].Shape()))
					kv.V = append(kv.V, g.Parameter(gr, fmt.Sprintf("cache_v.%d", i), gs.cacheV[i].Shape()))
				}
				c.SetValue(gpt2.Cache, kv)
				keys := gs.cacheK[0].Shape().Dimensions[2]
				c.SetValue(gpt2.AttentionMask, g.Parameter(gr, "attention_mask", shapes.Make(dtypes.Bool, bs, keys)))
			} else if batch.Padded {
				c.SetValue(gpt2.AttentionMask, g.Parameter(gr, "attention_mask", shapes.Make(dtypes.Bool, bs, seq)))
			}
		} else {
			input = g.Parameter(gr, "input", batch.Tensor.Shape())
		}
		var outs []*Node
		stopped := false
		err := engine.Catch(func() error {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(stopSignal); ok {
						stopped = true
						return
					}
					panic(r)
				}
			}()
			outs = c.Run(m.root, input)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := tr.checkFired(c); err != nil {
			return nil, err
		}
		var results []*Node
		meta.saveNames = nil
		if !stopped && len(outs) > 0 && m.cfg != nil {
			results = append(results, outs[0])
			meta.saveNames = append(meta.saveNames, "logits")
		} else if !stopped && len(outs) > 0 {
			results = append(results, outs...)
			for i := range outs {
				meta.saveNames = append(meta.saveNames, fmt.Sprintf("output.%d", i))
			}
		}
		if gs != nil && !stopped {
			kv := c.Value(gpt2.Cache).(*gpt2.KVCache)
			meta.nCache = len(kv.NewK)
			results = append(results, kv.NewK...)
			results = append(results, kv.NewV...)
		}
		for _, s := range tr.saves {
			if s.proxy.parent != nil {
				continue
			}
			results = append(results, s.proxy.Node())
			meta.saveNames = append(meta.saveNames, s.name)
		}
		for _, cp := range tr.computes {
			results = append(results, cp.fn())
			meta.saveNames = append(meta.saveNames, cp.name)
		}
		if len(tr.grads) > 0 {
			if tr.backward == nil {
				module.Errorf("Grad() needs Tracer.Backward(func() *Node { ... }) to say what to differentiate")
			}
			loss := tr.backward()
			if !loss.Shape().IsScalar() {
				module.Errorf("Backward: the value must be a scalar, got shape %v", loss.Shape().Dimensions)
			}
			var wrt []*Node
			for _, p := range tr.grads {
				wrt = append(wrt, p.Node())
			}
			grads := g.Gradient(loss, wrt...)
			for _, s := range tr.saves {
				if s.proxy.parent == nil {
					continue
				}
				for i, p := range tr.grads {
					if p == s.proxy.parent {
						results = append(results, grads[i])
						meta.saveNames = append(meta.saveNames, s.name)
					}
				}
			}
		}
		if len(results) == 0 {
			module.Errorf("the trace computes nothing: save a value or let the model run to its output")
		}
		return results, nil
	}
}

func (m *Model) execute(tr *trace, batch *Batch, edits []*edit.Edit, gs *genState) (*Result, error) {
	meta := &buildMeta{fuse: true}
	build := m.builder(tr, batch, edits, gs, meta)
	feed := func(name string, shape shapes.Shape) (*tensors.Tensor, error) {
		if w, ok := m.weights[name]; ok {
			return w, nil
		}
		if t, ok := tr.inputs[name]; ok {
			return t, nil
		}
		switch {
		case name == "input_ids":
			return intTensor(batch.IDs), nil
		case name == "position_ids":
			if gs != nil {
				pos := make([][]int, len(batch.Positions))
				for i, row := range batch.Positions {
					pos[i] = make([]int, len(row))
					for j, p := range row {
						pos[i][j] = p
					}
				}
				return intTensor(pos), nil
			}
			return intTensor(batch.Positions), nil
		case name == "attention_mask":
			return boolTensor(batch.Mask), nil
		case name == "input":
			return batch.Tensor, nil
		case name == "cache_pos":
			return tensors.FromScalar(int32(gs.pos)), nil
		case strings.HasPrefix(name, "cache_k."):
			var i int
			fmt.Sscanf(name, "cache_k.%d", &i)
			return gs.cacheK[i], nil
		case strings.HasPrefix(name, "cache_v."):
			var i int
			fmt.Sscanf(name, "cache_v.%d", &i)
			return gs.cacheV[i], nil
		}
		return nil, fmt.Errorf("no value for graph input %q", name)
	}
	outs, err := m.eng.Run("trace", build, feed)
	if err != nil {
		return nil, err
	}
	res := &Result{values: map[string]*tensors.Tensor{}, lists: map[string][]*tensors.Tensor{}, Batch: batch, Backend: m.eng.Name}
	// Outputs: [model outputs...] [cache...] [saves...]
	i := 0
	nModel := 0
	for _, n := range meta.saveNames {
		if n == "logits" || strings.HasPrefix(n, "output.") {
			nModel++
		}
	}
	for ; i < nModel; i++ {
		res.values[meta.saveNames[i]] = outs[i]
		res.order = append(res.order, meta.saveNames[i])
	}
	if gs != nil && meta.nCache > 0 {
		gs.newK = outs[i : i+meta.nCache]
		gs.newV = outs[i+meta.nCache : i+2*meta.nCache]
		i += 2 * meta.nCache
	}
	for j := nModel; j < len(meta.saveNames); j++ {
		res.values[meta.saveNames[j]] = outs[i]
		res.order = append(res.order, meta.saveNames[j])
		i++
	}
	return res, nil
}

// remap follows a graph rewrite (an edit) so saved proxies point at the live nodes.
func (tr *trace) remap(mp map[*Node]*Node) {
	for _, evs := range tr.points {
		for _, ev := range evs {
			if r, ok := mp[ev.proxy.node]; ok {
				ev.proxy.node = r
			}
		}
	}
}

// checkFired reports interventions whose point the forward never reached.
func (tr *trace) checkFired(c *module.Ctx) error {
	var msgs []error
	keys := make([]pointKey, 0, len(tr.points))
	for k := range tr.points {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		if tr.fired[k] {
			continue
		}
		if tr.stop {
			continue
		}
		var rec *module.CallRecord
		calls := 0
		for _, r := range c.Calls() {
			if r.Path == k.path {
				calls++
				if r.Index == k.call {
					rec = r
				}
			}
		}
		switch {
		case calls == 0:
			msgs = append(msgs, fmt.Errorf("%s: the module %q was not called in this forward", k, k.path))
		case rec == nil:
			msgs = append(msgs, fmt.Errorf("%s: the module was called %d time(s), there is no call %d", k, calls, k.call))
		case k.kind == labelPoint:
			var names []string
			for _, l := range rec.Labels {
				names = append(names, l.Name)
			}
			if len(names) == 0 {
				names = []string{"none"}
			}
			children := []string{}
			for _, ch := range module.ChildrenOf(rec.Module) {
				children = append(children, ch.Name)
			}
			full := module.Join(k.path, k.label)
			if user, ok := tr.spelled[full]; ok {
				full = user
			}
			msgs = append(msgs, module.NewError(ErrUnknownPath, "no module or labelled value %q: %s has labelled values %s and children %s%s",
				full, k.path, strings.Join(names, ", "), strings.Join(children, ", "), suggestPaths(full, tr.model.Paths())))
		default:
			msgs = append(msgs, fmt.Errorf("%s was never reached", k))
		}
	}
	if len(msgs) > 0 {
		return errors.Join(msgs...)
	}
	return nil
}

func intTensor(rows [][]int) *tensors.Tensor {
	if len(rows) == 0 {
		return tensors.FromFlatDataAndDimensions([]int32{}, 0, 0)
	}
	data := make([]int32, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		for _, v := range r {
			data = append(data, int32(v))
		}
	}
	return tensors.FromFlatDataAndDimensions(data, len(rows), len(rows[0]))
}

func boolTensor(rows [][]bool) *tensors.Tensor {
	data := make([]bool, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		data = append(data, r...)
	}
	return tensors.FromFlatDataAndDimensions(data, len(rows), len(rows[0]))
}
