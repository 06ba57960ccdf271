package nnsight

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/tensor"
)

// Node is a value in the graph being built (GoMLX's *graph.Node).
type Node = g.Node

// Tracer is what a trace's closure receives. It registers interventions: nothing runs while
// the closure runs; the model runs after it returns, with the interventions compiled in.
// A Tracer made by Invoke sees only its own prompts' rows of the batch.
type Tracer struct {
	tr       *trace
	rows     *[2]int // nil: the whole batch
	name     string
	inInvoke bool
}

// trace is the state shared by a trace's tracers.
type trace struct {
	model      *Model
	points     map[pointKey][]*event
	saves      []*saved
	computes   []computeSpec
	errs       []error
	invokes    []*invokeSpec
	passes     []*backwardPass
	curPass    *backwardPass // the pass whose body is registering (nil outside bodies)
	loose      []*gradEvent  // gradient reads and sets outside any Backward body
	gradAt     map[gradKey]*gradPoint
	active     *backwardPass // the pass whose gradient is being built
	stop       bool
	step       int // generation step (0 for a plain trace)
	maxSteps   int // steps the generation may run (1 for a plain trace)
	caches     []*cacheSpec
	reshaped   []string      // Sets that changed a value's shape, for error messages
	prevCaches []*Cache      // a generation's caches, filled step after step
	cacheNames *module.Names // path resolution for cache globs, made once per trace
	skips      map[string][]*skipSpec
	ctx        *module.Ctx
	fired      map[pointKey]bool
	inputs     map[string]*tensors.Tensor // extra graph inputs (patch tensors, scalars)
	nInputs    int
	lists      map[string]bool   // names saved per generation step
	spelled    map[string]string // the model's own path -> the path as the user wrote it
}

type invokeSpec struct {
	input any
	rows  [2]int
	ids   [][]int
}

type pointKind int

const (
	outputPoint pointKind = iota
	inputPoint
	labelPoint
)

type pointKey struct {
	path  string // module path (for labels: the module that owns the label)
	kind  pointKind
	label string
	call  int
}

func (k pointKey) String() string { return k.spelled(nil) }

// spelled writes the key with the module path as the user wrote it (an alias, a negative
// index), where spelling (the model's own path -> the user's) has it.
func (k pointKey) spelled(spelling map[string]string) string {
	if user, ok := spelling[k.own()]; ok && k.kind != outputPoint {
		// The user named the value itself: a label, or an input ("blocks.0.hook_resid_pre").
		if k.call > 0 {
			user += fmt.Sprintf(" (call %d)", k.call)
		}
		return user
	}
	s := k.path
	if user, ok := spelling[k.path]; ok {
		s = user
	}
	switch k.kind {
	case outputPoint:
		s += ".output"
	case inputPoint:
		s += ".input"
	case labelPoint:
		s += "." + k.label
	}
	if k.call > 0 {
		s += fmt.Sprintf(" (call %d)", k.call)
	}
	return s
}

// own is the point's own path, the key under which trace.spell records how the user wrote
// it: the module, "module.label" or "module.input".
func (k pointKey) own() string {
	switch k.kind {
	case labelPoint:
		return module.Join(k.path, k.label)
	case inputPoint:
		return module.Join(k.path, "input")
	}
	return k.path
}

type event struct {
	proxy *Proxy
	set   any // nil for a read
	isSet bool
	grad  bool
}

type saved struct {
	name  string
	proxy *Proxy
}

type computeSpec struct {
	name string
	fn   func() *Node
}

type skipSpec struct {
	value any
	rows  *[2]int
	who   string // "invoke 1", or "" for the whole batch
}

// A backward pass (nnsight's `with loss.backward():`): its loss, and the gradient reads and
// sets registered for it, in order. Passes are independent: each differentiates its own loss.
type backwardPass struct {
	loss   func() *Node
	body   bool
	events []*gradEvent
}

type gradEvent struct {
	grad  *Proxy // the gradient proxy (its parent is the forward value)
	set   any
	isSet bool
}

// gradKey is a forward value that gradients are read or set at.
type gradKey struct {
	key pointKey
	idx int
}

// gradPoint is the identity node with a custom gradient inserted at a forward value: the
// forward goes through it unchanged, and each pass's gradient reads and sets act on the
// gradient arriving there.
type gradPoint struct {
	x, y *Node
}

func (t *Tracer) errorf(format string, args ...any) {
	t.tr.errs = append(t.tr.errs, fmt.Errorf(format, args...))
}

// Step is the generation step this closure is registering for (0 in a plain trace; in
// Generate, 0 is the forward over the prompt, 1 the next token, ...).
func (t *Tracer) Step() int { return t.tr.step }

// Invoke adds a prompt (a string, a []string, token ids []int or [][]int, or Tokens) to the
// batch; fn registers interventions that see only that prompt's rows. Invokes run together
// in one batched forward, padded (left by default) with an attention mask. A prompt-less
// invoke (input nil) adds no rows: its fn sees the whole batch (nnsight's tracer.invoke()).
func (t *Tracer) Invoke(input any, fn func(iv *Tracer)) {
	if t.inInvoke {
		t.errorf("Invoke inside an invoke is not allowed")
		return
	}
	if input == nil {
		if fn != nil {
			fn(&Tracer{tr: t.tr, name: "the prompt-less invoke", inInvoke: true})
		}
		return
	}
	spec := &invokeSpec{input: input}
	t.tr.invokes = append(t.tr.invokes, spec)
	iv := &Tracer{tr: t.tr, rows: &spec.rows, name: fmt.Sprintf("invoke %d", len(t.tr.invokes)-1), inInvoke: true}
	if fn != nil {
		fn(iv)
	}
}

// Module returns the envoy of the module (or labelled value) at path: "transformer.h.3.attn",
// "transformer.h[3].attn", "transformer.h[-1]" (the last block), an alias (Rename), or a
// labelled intermediate "transformer.h.3.attn.query".
func (t *Tracer) Module(path string) *Envoy {
	user := module.NormalizePath(path)
	e := &Envoy{t: t, path: user}
	mod, rest, err := t.tr.model.names(true).Resolve(user)
	switch {
	case err != nil:
		t.tr.errs = append(t.tr.errs, err)
	case rest == "":
		e.path = mod
		t.tr.spell(mod, user)
		return e
	case mod != "" && rest == "input":
		// The module's first input, as caches name it ("transformer.h.0.input"), or an
		// other name for it (TransformerLens's "blocks.0.hook_resid_pre").
		e.path, e.input = mod, true
		t.tr.spell(module.Join(mod, rest), user)
		return e
	case mod != "" && !strings.Contains(rest, "."):
		// Not a module: a label of its parent module.
		e.path, e.label = mod, rest
		t.tr.spell(module.Join(mod, rest), user)
		return e
	default:
		paths := t.tr.model.Paths()
		hint := suggestPaths(user, append(slices.Clone(paths), t.tr.model.HookNames()...))
		if hint == "" {
			// Nothing is near: list what exists rather than naming nothing.
			var some []string
			for _, p := range paths {
				if p != "" && len(some) < 20 {
					some = append(some, p)
				}
			}
			hint = "; modules: " + strings.Join(some, ", ")
		}
		t.tr.errs = append(t.tr.errs, module.NewError(ErrUnknownPath, "no module %q in %s%s", user, t.tr.model.describe(), hint))
	}
	e.bad = true
	return e
}

// spell remembers how the user wrote a path, for messages.
func (tr *trace) spell(own, user string) {
	if own == user {
		return
	}
	if tr.spelled == nil {
		tr.spelled = map[string]string{}
	}
	if _, ok := tr.spelled[own]; !ok {
		tr.spelled[own] = user
	}
}

// spelledPath is a module path as the user wrote it.
func (tr *trace) spelledPath(own string) string {
	if user, ok := tr.spelled[own]; ok {
		return user
	}
	return own
}

func suggestPaths(path string, paths []string) string {
	best := module.Closest(path, paths, 3)
	if len(best) == 0 {
		return ""
	}
	return "; nearest valid paths: " + strings.Join(best, ", ")
}

// Logits is the output of lm_head: [batch, seq, vocab] (GPT-2's module name).
func (t *Tracer) Logits() *Proxy { return t.Module("lm_head").Output() }

// Hidden is the final hidden state (the output of transformer.ln_f: GPT-2's module name).
func (t *Tracer) Hidden() *Proxy { return t.Module("transformer.ln_f").Output() }

// Stop ends the forward early, once every value the trace reads or sets has been computed.
// The logits are then not computed (unless saved).
func (t *Tracer) Stop() { t.tr.stop = true }

// Compute saves a value built at the end of the forward from other proxies' nodes (e.g. a
// logit difference).
func (t *Tracer) Compute(name string, fn func() *Node) {
	t.tr.computes = append(t.tr.computes, computeSpec{name: name, fn: fn})
}

// Backward declares a backward pass: the scalar loss (built at the end of the forward) whose
// gradient Grad() proxies read and set (torch's loss.backward()). Grad() proxies asked for
// inside body belong to this pass; several passes in one trace are independent (nnsight's
// multi-backward: a pass over 2·loss sees twice the gradients of a pass over loss). Without
// a body, Grad() proxies asked for outside any body belong to this pass (then only one
// body-less Backward is allowed).
func (t *Tracer) Backward(loss func() *Node, body ...func()) {
	if t.tr.curPass != nil {
		t.errorf("Backward inside another Backward's body is not supported")
		return
	}
	if loss == nil {
		t.errorf("Backward: nil loss function")
		return
	}
	bp := &backwardPass{loss: loss, body: len(body) > 0}
	t.tr.passes = append(t.tr.passes, bp)
	if len(body) == 0 {
		return
	}
	t.tr.curPass = bp
	defer func() { t.tr.curPass = nil }()
	for _, b := range body {
		if b != nil {
			b()
		}
	}
}

// Input makes a graph input from a tensor (GoMLX's or a tensor.Tensor) or Go value (a slice
// or a number): changing the value between traces does not recompile. Use it for patch
// tensors and scales.
func (t *Tracer) Input(value any) *Node {
	if t.tr.ctx == nil {
		// Called at registration time: defer until the graph exists.
		panic(&module.Error{Msg: "Tracer.Input must be called inside a Set/Compute function (while the graph is built)"})
	}
	tensor, err := toTensor(value)
	if err != nil {
		module.Errorf("Tracer.Input: %v", err)
	}
	name := fmt.Sprintf("nnsight.input.%d", t.tr.nInputs)
	t.tr.nInputs++
	t.tr.inputs[name] = tensor
	return g.Parameter(t.tr.ctx.G, name, tensor.Shape())
}

func toTensor(value any) (*tensors.Tensor, error) {
	switch v := value.(type) {
	case *tensors.Tensor:
		return v, nil
	case *tensor.Tensor:
		return v.GoMLX(), nil
	case float64:
		return tensors.FromScalar(float32(v)), nil
	case float32:
		return tensors.FromScalar(v), nil
	case int:
		return tensors.FromScalar(float32(v)), nil
	}
	return tensors.FromAnyValue(value)
}

// Envoy is a module (or a labelled value inside one) seen from a trace.
type Envoy struct {
	t     *Tracer
	path  string
	label string
	input bool // the module's first input ("path.input"); Output() reads and sets it
	call  int
	bad   bool
}

// Path is the envoy's dotted path.
func (e *Envoy) Path() string {
	if e.input {
		return module.Join(e.path, "input")
	}
	return module.Join(e.path, e.label)
}

// userPath is the envoy's path as the user wrote it, with the model's own when they differ.
func (e *Envoy) userPath() string {
	own := e.Path()
	if user, ok := e.t.tr.spelled[own]; ok {
		return fmt.Sprintf("%s (%s)", user, own)
	}
	return own
}

// Call selects the n-th call of the module (0-based) when the forward calls it several times.
func (e *Envoy) Call(n int) *Envoy { c := *e; c.call = n; return &c }

// Output is the module's (first) output, or the labelled value.
func (e *Envoy) Output() *Proxy {
	if e.input {
		return e.proxy(pointKey{path: e.path, kind: inputPoint, call: e.call}, 0)
	}
	if e.label != "" {
		return e.proxy(pointKey{path: e.path, kind: labelPoint, label: e.label, call: e.call}, 0)
	}
	return e.proxy(pointKey{path: e.path, kind: outputPoint, call: e.call}, 0)
}

// OutputN is the module's i-th output.
func (e *Envoy) OutputN(i int) *Proxy {
	return e.proxy(pointKey{path: e.path, kind: outputPoint, call: e.call}, i)
}

// Input is the module's first input.
func (e *Envoy) Input() *Proxy { return e.InputN(0) }

// InputN is the module's i-th input.
func (e *Envoy) InputN(i int) *Proxy {
	if e.label != "" || e.input {
		e.t.errorf("%s is a value (a label or a module's input), it has no inputs; use Output()", e.userPath())
	}
	return e.proxy(pointKey{path: e.path, kind: inputPoint, call: e.call}, i)
}

// Skip replaces the whole module's forward with value (a Proxy, a tensor or a func of the
// module's first input): the module's own computation is not built.
func (e *Envoy) Skip(value any) {
	if e.bad {
		return
	}
	if e.label != "" || e.input {
		e.t.errorf("cannot Skip %s: it is a value, not a module; use Output().Set", e.userPath())
		return
	}
	if e.t.tr.skips == nil {
		e.t.tr.skips = map[string][]*skipSpec{}
	}
	k := fmt.Sprintf("%s#%d", e.path, e.call)
	for _, sk := range e.t.tr.skips[k] {
		if sk.who == e.t.name {
			e.t.errorf("Skip of %s: already skipped in %s", e.Path(), whoName(e.t.name))
			return
		}
	}
	e.t.tr.skips[k] = append(e.t.tr.skips[k], &skipSpec{value: value, rows: e.t.rows, who: e.t.name})
}

func (e *Envoy) proxy(k pointKey, idx int) *Proxy {
	p := &Proxy{t: e.t, key: k, idx: idx, rows: e.t.rows, bad: e.bad}
	if e.bad {
		return p
	}
	if e.t.tr.ctx != nil {
		// Asked for while the graph is built (inside Set/Compute): read the value now.
		p.resolveNow()
		return p
	}
	e.t.tr.points[k] = append(e.t.tr.points[k], &event{proxy: p})
	return p
}

// resolveNow sets the proxy's node from the value the forward has already computed, if any.
func (p *Proxy) resolveNow() {
	full := p.t.tr.currentValue(p.key, p.idx)
	if full != nil {
		p.node = view(full, p.rows, p.region)
	}
}

// currentValue is the value at a point that the forward has already passed, or nil.
func (tr *trace) currentValue(k pointKey, idx int) *Node {
	for _, rec := range tr.ctx.Calls() {
		if rec.Path != k.path || rec.Index != k.call {
			continue
		}
		switch k.kind {
		case outputPoint:
			if rec.End == 0 && !rec.Skipped || idx >= len(rec.Outputs) {
				return nil
			}
			return rec.Outputs[idx]
		case inputPoint:
			if idx < len(rec.Inputs) {
				return rec.Inputs[idx]
			}
		case labelPoint:
			return rec.Label(k.label)
		}
	}
	return nil
}

// Proxy is a value of the forward (a module's input or output, or a labelled value), for
// one invoke's rows or the whole batch, possibly narrowed with At. Its graph node exists
// once the model reaches that point: use Node inside Set/Compute functions.
type Proxy struct {
	t      *Tracer
	key    pointKey
	idx    int
	rows   *[2]int
	region []axisRange
	node   *Node
	bad    bool
	parent *Proxy        // for a Grad() proxy: the forward value
	pass   *backwardPass // for a Grad() proxy: its backward pass
}

type axisRange struct{ axis, lo, hi int }

// String names the proxy like its path: "transformer.h.0.mlp.output".
func (p *Proxy) String() string {
	s := p.key.String()
	if p.t != nil {
		if user, ok := p.t.tr.spelled[p.key.own()]; ok {
			s += " (" + user + ")" // as the user wrote it: an alias, a TransformerLens name
		}
	}
	return s
}

// At narrows the proxy to [lo, hi) along axis (negative indices count from the end), e.g.
// At(1, 5, 6) is position 5 of a [batch, seq, hidden] value.
func (p *Proxy) At(axis, lo, hi int) *Proxy {
	q := *p
	q.region = append(append([]axisRange(nil), p.region...), axisRange{axis, lo, hi})
	q.node = nil
	qp := &q
	if p.bad {
		return qp
	}
	if p.t.tr.ctx != nil {
		qp.resolveNow()
		return qp
	}
	p.t.tr.points[p.key] = append(p.t.tr.points[p.key], &event{proxy: qp})
	return qp
}

// Save keeps the value after the run, under name (default: the proxy's path).
func (p *Proxy) Save(name ...string) *Proxy {
	n := p.key.spelled(p.t.tr.spelled) // the path as the user wrote it
	if len(name) > 0 && name[0] != "" {
		n = name[0]
	}
	for _, s := range p.t.tr.saves {
		if s.name == n && !p.t.tr.lists[n] {
			p.t.errorf("Save(%q): the name is already used by another saved value", n)
			return p
		}
	}
	p.t.tr.saves = append(p.t.tr.saves, &saved{name: n, proxy: p})
	return p
}

// Set replaces the value: with another Proxy, a tensor or Go value (fed as a graph input,
// so sweeping it does not recompile), or a func(x *Node) *Node of the current value.
// On a Grad() proxy it replaces the gradient that flows backward from that point; the
// forward value is unchanged.
func (p *Proxy) Set(value any) {
	if p.bad {
		return
	}
	if p.parent != nil {
		ev := &gradEvent{grad: p, set: value, isSet: true}
		if p.pass == nil {
			p.t.tr.loose = append(p.t.tr.loose, ev)
		} else {
			p.pass.events = append(p.pass.events, ev)
		}
		return
	}
	p.t.tr.points[p.key] = append(p.t.tr.points[p.key], &event{proxy: p, set: value, isSet: true})
}

// Node is the proxy's graph node; valid inside Set/Compute/Backward functions once the model
// has computed it.
func (p *Proxy) Node() *Node {
	if p.node == nil {
		module.Errorf("%s is used before the model computed it (values can only flow forward)", p)
	}
	return p.node
}

// Grad is the gradient of a backward pass's loss with respect to this value: inside a
// Backward body, that pass's; outside any body, the one body-less Backward's. Save reads it;
// Set replaces what flows further backward (nnsight's `x.grad = ...`). Each call of Grad
// is a new read at this point of the pass: a Grad() after a Set sees the new gradient.
func (p *Proxy) Grad() *Proxy {
	if p.parent != nil {
		p.t.errorf("Grad of a gradient (%s) is not supported", p)
		return &Proxy{t: p.t, bad: true}
	}
	tr := p.t.tr
	q := &Proxy{t: p.t, key: p.key, idx: p.idx, rows: p.rows, region: p.region, parent: p, bad: p.bad, pass: tr.curPass}
	if p.bad {
		return q
	}
	if tr.ctx != nil {
		p.t.errorf("Grad of %s asked for while the graph is built: call Grad in the trace function or a Backward body", p)
		q.bad = true
		return q
	}
	if q.pass == nil {
		tr.loose = append(tr.loose, &gradEvent{grad: q})
	} else {
		q.pass.events = append(q.pass.events, &gradEvent{grad: q})
	}
	// The forward value must flow through an identity with a custom gradient at this point.
	tr.points[p.key] = append(tr.points[p.key], &event{proxy: q, grad: true})
	return q
}

func whoName(who string) string {
	if who == "" {
		return "the whole batch"
	}
	return who
}

// attachLoose gives the gradient reads and sets made outside any Backward body to the one
// body-less Backward.
func (tr *trace) attachLoose() error {
	if len(tr.loose) == 0 {
		return nil
	}
	var bare []*backwardPass
	for _, bp := range tr.passes {
		if !bp.body {
			bare = append(bare, bp)
		}
	}
	switch len(bare) {
	case 0:
		return errors.New("Grad() needs Tracer.Backward(loss) to say what to differentiate (or ask for Grad() inside a Backward body)")
	case 1:
	default:
		return fmt.Errorf("Grad() outside a Backward body is ambiguous with %d body-less Backward calls: "+
			"ask for each gradient inside its pass, Backward(loss, func() { x.Grad().Save(...) })", len(bare))
	}
	for _, ev := range tr.loose {
		ev.grad.pass = bare[0]
	}
	bare[0].events = append(tr.loose, bare[0].events...)
	tr.loose = nil
	return nil
}
