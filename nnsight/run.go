package nnsight

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/module"
)

// Trace runs the model on input (a prompt string, a []string batch, token ids []int or
// [][]int; a tensor for user-defined models; or nil when fn adds invokes) with the
// interventions fn registers, and returns the saved values. The logits are always saved
// as "logits" (unless Stop ended the forward before them).
func (m *Model) Trace(input any, fn func(t *Tracer)) (*Result, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	tr, batch, err := m.prepare(input, fn)
	if err != nil {
		return nil, err
	}
	if m.lm == nil && input != nil {
		m.setExample(input)
	}
	return m.execute(tr, batch, m.Edits(), nil)
}

func newTrace(m *Model, step int) *trace {
	return &trace{model: m, points: map[pointKey][]*event{}, fired: map[pointKey]bool{},
		inputs: map[string]*tensors.Tensor{}, lists: map[string]bool{}, step: step}
}

// prepare registers a trace's interventions and makes its batch.
func (m *Model) prepare(input any, fn func(t *Tracer)) (*trace, *Batch, error) {
	tr, err := m.register(input, fn, 0, 1, nil)
	if err != nil {
		return nil, nil, err
	}
	batch, err := m.makeBatch(tr)
	if err != nil {
		return nil, nil, err
	}
	return tr, batch, nil
}

// register runs the user's closure, which only records interventions, for one step of
// maxSteps (a trace is step 0 of 1). caches are a generation's caches from earlier steps.
func (m *Model) register(input any, fn func(t *Tracer), step, maxSteps int, caches []*Cache) (*trace, error) {
	tr := newTrace(m, step)
	tr.maxSteps, tr.prevCaches = maxSteps, caches
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
	if err := tr.attachLoose(); err != nil {
		return nil, err
	}
	return tr, nil
}

func (m *Model) describe() string {
	if m.source != "" {
		return fmt.Sprintf("model %q", m.source)
	}
	return module.TypeName(m.root)
}

// execute builds the graph of a trace, runs it and collects the saved values.
// buildMeta is what a build tells the code that runs it.
type buildMeta struct {
	fuse      bool       // runs may use fused kernels; captures and scans may not
	saveNames []string   // the user's values, after the model outputs and the cache
	saveAxes  [][]string // their axis names (nil where unknown)
	nModel    int
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
		module.UseTransposedWeights.Set(c, m.opts.transposedLMHead && !m.eng.ChoosesLayouts())
		var edited []string
		for _, e := range edits {
			edited = append(edited, e.Parent)
		}
		c.SetFusion(meta.fuse && !m.opts.noFusion, edited)
		c.AddHooks(tr)
		var inputs []*Node
		var cacheIn *module.CacheInputs
		if m.lm != nil {
			bs, seq := len(batch.IDs), len(batch.IDs[0])
			in := module.LMInputs{
				IDs:       g.Parameter(gr, "input_ids", shapes.Make(dtypes.Int32, bs, seq)),
				Positions: g.Parameter(gr, "position_ids", shapes.Make(dtypes.Int32, bs, seq)),
			}
			if gs != nil {
				cacheIn = &module.CacheInputs{Pos: g.Parameter(gr, "cache_pos", shapes.Make(dtypes.Int32)), MaxLen: gs.maxLen}
				for i, sl := range gs.slots {
					cacheIn.State = append(cacheIn.State, g.Parameter(gr, fmt.Sprintf("cache.%d", i), sl.Shape))
				}
				in.Cache = cacheIn
				in.Mask = g.Parameter(gr, "attention_mask", shapes.Make(dtypes.Bool, bs, gs.maxLen))
			} else if batch.Padded {
				in.Mask = g.Parameter(gr, "attention_mask", shapes.Make(dtypes.Bool, bs, seq))
			}
			inputs = m.lm.BindInputs(c, in)
		} else {
			inputs = []*Node{g.Parameter(gr, "input", batch.Tensor.Shape())}
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
			outs = c.Run(m.root, inputs...)
			return nil
		})
		if err != nil {
			if len(tr.reshaped) > 0 {
				err = module.WithKind(fmt.Errorf("%w (%s)", err, strings.Join(tr.reshaped, "; ")), ErrShape)
			}
			return nil, err
		}
		if err := tr.checkFired(c); err != nil {
			return nil, err
		}
		// Outputs, in order: the model's outputs, the KV cache, then the user's values.
		var results []*Node
		meta.saveNames, meta.saveAxes, meta.nModel = nil, nil, 0
		if !stopped && len(outs) > 0 {
			if m.lm != nil {
				outs = outs[:1] // the logits
			}
			results = append(results, outs...)
			meta.nModel = len(outs)
		}
		if gs != nil && !stopped {
			next, err := gs.checkWritten(cacheIn.State, m.lm.CacheUpdates(c), tr.step)
			if err != nil {
				return nil, err
			}
			meta.nCache = len(next)
			results = append(results, next...)
		}
		for _, bp := range tr.passes {
			if err := tr.runBackward(bp); err != nil {
				return nil, err
			}
		}
		for _, s := range tr.saves {
			n := s.proxy.node
			if s.proxy.parent != nil && n == nil {
				// The pass's loss does not depend on this value: its gradient is zero.
				full := tr.gradAt[gradKey{s.proxy.key, s.proxy.idx}]
				if full == nil {
					module.Errorf("Save(%q): %s was never reached in the forward", s.name, s.proxy)
				}
				n = view(g.ZerosLike(full.x), s.proxy.rows, s.proxy.region)
			}
			if n == nil {
				n = s.proxy.Node()
			}
			results = append(results, n)
			meta.saveNames = append(meta.saveNames, s.name)
			meta.saveAxes = append(meta.saveAxes, tr.axesOf(s.proxy, n.Rank()))
		}
		for _, cp := range tr.computes {
			results = append(results, cp.fn())
			meta.saveNames = append(meta.saveNames, cp.name)
			meta.saveAxes = append(meta.saveAxes, nil)
		}
		for _, cs := range tr.caches {
			for _, e := range cs.entries {
				results = append(results, e.node)
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
			return intTensor(batch.Positions), nil
		case name == "attention_mask":
			return boolTensor(batch.Mask), nil
		case name == "input":
			return batch.Tensor, nil
		case name == "cache_pos" && gs != nil:
			return tensors.FromScalar(int32(gs.pos)), nil
		case strings.HasPrefix(name, "cache.") && gs != nil:
			var i int
			if _, err := fmt.Sscanf(name, "cache.%d", &i); err == nil && i >= 0 && i < len(gs.state) {
				return gs.state[i], nil
			}
		}
		t, ok, err := transposes.Feed(m.eng.Backend, name, shape, func(base string) (*tensors.Tensor, bool) {
			w, ok := m.weights[base]
			return w, ok
		})
		if ok || err != nil {
			return t, err
		}
		return nil, fmt.Errorf("no value for graph input %q", name)
	}
	outs, err := m.eng.Run("trace", build, feed)
	if err != nil {
		return nil, err
	}
	res := &Result{values: map[string]*tensors.Tensor{}, lists: map[string][]*tensors.Tensor{}, Batch: batch, Backend: m.eng.Name}
	res.outputs, res.lm = outs[:meta.nModel], m.lm != nil
	res.axes = map[string][]string{}
	if res.lm && len(res.outputs) == 1 {
		if a := module.OutputAxes(m.root, "lm_head"); len(a) == res.outputs[0].Shape().Rank() {
			res.axes["logits"] = a
		}
	}
	i := meta.nModel
	if gs != nil && meta.nCache > 0 {
		gs.next = outs[i : i+meta.nCache]
		i += meta.nCache
	}
	for j, name := range meta.saveNames {
		res.values[name] = outs[i]
		res.order = append(res.order, name)
		if a := meta.saveAxes[j]; a != nil {
			res.axes[name] = a
		}
		i++
	}
	for _, cs := range tr.caches {
		cs.fill(outs[i : i+len(cs.entries)])
		i += len(cs.entries)
	}
	return res, nil
}

// runBackward builds one backward pass: the gradient of its loss flows through the identity
// nodes at the points its events read or set (gradIdentity), whose gradient functions apply
// those events while this pass is the active one.
func (tr *trace) runBackward(bp *backwardPass) error {
	if len(bp.events) == 0 {
		return nil
	}
	loss := bp.loss()
	if loss == nil {
		return errors.New("Backward: the loss function returned nil")
	}
	if !loss.Shape().IsScalar() {
		return fmt.Errorf("Backward: the loss must be a scalar, got shape %v (reduce it, e.g. with ReduceAllSum)", loss.Shape().Dimensions)
	}
	var wrt []*Node
	seen := map[gradKey]bool{}
	for _, ev := range bp.events {
		gk := gradKey{ev.grad.key, ev.grad.idx}
		if seen[gk] {
			continue
		}
		seen[gk] = true
		gp := tr.gradAt[gk]
		if gp == nil {
			return fmt.Errorf("the gradient of %s: the forward never reached that value", ev.grad)
		}
		wrt = append(wrt, gp.x)
	}
	for _, ev := range bp.events {
		ev.grad.node = nil // set by the gradient functions below
	}
	tr.active = bp
	defer func() { tr.active = nil }()
	g.Gradient(loss, wrt...)
	return nil
}

// remap follows a graph rewrite (an edit) so saved proxies point at the live nodes.
func (tr *trace) remap(mp map[*Node]*Node) {
	for _, gp := range tr.gradAt {
		if r, ok := mp[gp.x]; ok {
			gp.x = r
		}
		if r, ok := mp[gp.y]; ok {
			gp.y = r
		}
	}
	for _, cs := range tr.caches {
		for _, e := range cs.entries {
			if r, ok := mp[e.node]; ok {
				e.node = r
			}
		}
	}
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
			msgs = append(msgs, fmt.Errorf("%s: the module %q was not called in this forward", k.spelled(tr.spelled), tr.spelledPath(k.path)))
		case rec == nil:
			msgs = append(msgs, fmt.Errorf("%s: the module was called %d time(s), there is no call %d", k.spelled(tr.spelled), calls, k.call))
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
			other := ""
			if alt := tr.model.names(false).AltNamesAt(k.path); len(alt) > 0 {
				other = " (other names: " + strings.Join(alt, ", ") + ")"
			}
			msgs = append(msgs, module.NewError(ErrUnknownPath, "no module or labelled value %q: %s has labelled values %s%s and children %s%s",
				full, k.path, strings.Join(names, ", "), other, strings.Join(children, ", "),
				suggestPaths(full, append(tr.model.Paths(), tr.model.HookNames()...))))
		default:
			msgs = append(msgs, fmt.Errorf("%s was never reached", k.spelled(tr.spelled)))
		}
	}
	if len(msgs) > 0 {
		return errors.Join(msgs...)
	}
	return nil
}
