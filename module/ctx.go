package module

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/core/graph"
)

// Ctx is the context of one graph build: it resolves parameters, records every module call
// (its path, inputs, outputs, labelled values and the range of graph nodes it created) and
// gives Hooks a chance to act on each call. One Ctx builds one graph.
type Ctx struct {
	G *graph.Graph

	// ParamFn returns the graph node of a parameter, given its full dotted name.
	ParamFn func(name string, spec ParamSpec) *Node

	// Extra holds children added at build time (edit wrappers), by parent path.
	Extra map[string][]Child

	hooks     []Hooks
	frames    []*CallRecord
	calls     []*CallRecord
	counts    map[string]int
	values    map[any]any
	listeners []func(map[*Node]*Node)
	hookSpans [][2]graph.NodeId
	root      Module
	onDemand  bool // the label being made is LabelOnDemand's
}

// Hooks act on module calls while a graph is built. Each method returns the (possibly
// replaced) values. BeforeCall may return a non-nil skip to replace the whole forward.
type Hooks interface {
	BeforeCall(c *Ctx, rec *CallRecord, in []*Node) (newIn, skip []*Node)
	AfterCall(c *Ctx, rec *CallRecord, out []*Node) []*Node
	OnLabel(c *Ctx, rec *CallRecord, name string, x *Node) *Node
}

// CallRecord is what the Ctx remembers of one module call.
type CallRecord struct {
	Path     string
	Module   Module
	Index    int // how many earlier calls of the same path this build made
	Parent   *CallRecord
	Children []*CallRecord
	Inputs   []*Node
	Outputs  []*Node
	// Start and End bound the ids of the graph nodes the forward created: [Start, End).
	Start, End graph.NodeId
	Labels     []Label
	Skipped    bool
	// OutputAxes names the axes of Outputs[0] when the model says (AxesNamer); nil otherwise.
	OutputAxes []string
}

// Label is a named intermediate value inside a module's forward.
type Label struct {
	Name string
	Node *Node    // the value the forward continued with (after any intervention)
	Orig *Node    // the value the module computed
	Axes []string // what each axis is ("batch", "head", ...), when the model says (LabelAxes)
	// OnDemand marks a value computed only for those who ask for it by name (LabelOnDemand):
	// caches of everything leave it out.
	OnDemand bool
}

// Label returns the labelled node with the given name, or nil.
func (r *CallRecord) Label(name string) *Node {
	for _, l := range r.Labels {
		if l.Name == name {
			return l.Node
		}
	}
	return nil
}

// NewCtx starts a graph build on g.
func NewCtx(g *graph.Graph, paramFn func(name string, spec ParamSpec) *Node) *Ctx {
	return &Ctx{G: g, ParamFn: paramFn, counts: map[string]int{}, values: map[any]any{}, Extra: map[string][]Child{}}
}

// AddHooks appends hooks; they run in the order added.
func (c *Ctx) AddHooks(h Hooks) { c.hooks = append(c.hooks, h) }

// Calls returns every call recorded so far, in the order the calls started.
func (c *Ctx) Calls() []*CallRecord { return c.calls }

// Current is the record of the module whose forward is running (nil outside any).
func (c *Ctx) Current() *CallRecord {
	if len(c.frames) == 0 {
		return nil
	}
	return c.frames[len(c.frames)-1]
}

// Path is the dotted path of the module whose forward is running.
func (c *Ctx) Path() string {
	if r := c.Current(); r != nil {
		return r.Path
	}
	return ""
}

// OnRemap registers fn to be told when nodes are replaced by a graph rewrite.
func (c *Ctx) OnRemap(fn func(map[*Node]*Node)) { c.listeners = append(c.listeners, fn) }

// Run calls the root module (path "") with the given inputs.
func (c *Ctx) Run(root Module, in ...*Node) []*Node {
	c.root = root
	return c.call("", root, in)
}

// Call calls the child called name of the running module.
func (c *Ctx) Call(name string, in ...*Node) []*Node {
	cur := c.Current()
	if cur == nil {
		Errorf("module.Ctx.Call(%q) outside of any module's forward", name)
	}
	m := c.child(cur, name)
	if m == nil {
		Errorf("module %q (%s) has no child %q; children: %s", cur.Path, TypeName(cur.Module), name,
			strings.Join(c.childNames(cur), ", "))
	}
	return c.call(Join(cur.Path, name), m, in)
}

// Call1 is Call for children with one output.
func (c *Ctx) Call1(name string, in ...*Node) *Node {
	out := c.Call(name, in...)
	if len(out) == 0 {
		Errorf("module %q returned no outputs", Join(c.Path(), name))
	}
	return out[0]
}

// CallModule calls m as a child named name of the running module, whether or not it is one
// of its declared children (edits insert wrappers this way).
func (c *Ctx) CallModule(name string, m Module, in ...*Node) []*Node {
	return c.call(Join(c.Path(), name), m, in)
}

func (c *Ctx) child(rec *CallRecord, name string) Module {
	for _, ch := range ChildrenOf(rec.Module) {
		if ch.Name == name {
			return ch.Module
		}
	}
	for _, ch := range c.Extra[rec.Path] {
		if ch.Name == name {
			return ch.Module
		}
	}
	return nil
}

func (c *Ctx) childNames(rec *CallRecord) []string {
	var names []string
	for _, ch := range ChildrenOf(rec.Module) {
		names = append(names, ch.Name)
	}
	return names
}

func (c *Ctx) call(path string, m Module, in []*Node) []*Node {
	rec := &CallRecord{Path: path, Module: m, Index: c.counts[path], Parent: c.Current(), OutputAxes: OutputAxes(c.root, path)}
	c.counts[path]++
	if rec.Parent != nil {
		rec.Parent.Children = append(rec.Parent.Children, rec)
	}
	c.calls = append(c.calls, rec)
	for _, h := range c.hooks {
		mark := c.mark()
		newIn, skip := h.BeforeCall(c, rec, in)
		c.span(mark)
		if newIn != nil {
			in = newIn
		}
		if skip != nil {
			rec.Inputs, rec.Outputs, rec.Skipped = in, skip, true
			rec.Start = graph.NodeId(len(c.G.Nodes()))
			rec.End = rec.Start
			return c.after(rec, skip)
		}
	}
	rec.Inputs = in
	rec.Start = graph.NodeId(len(c.G.Nodes()))
	c.frames = append(c.frames, rec)
	out := c.forward(rec, m, in)
	rec.End = graph.NodeId(len(c.G.Nodes()))
	rec.Outputs = out
	out = c.after(rec, out)
	c.frames = c.frames[:len(c.frames)-1]
	return out
}

// forward runs m.Forward, adding the module's path to errors raised inside it.
func (c *Ctx) forward(rec *CallRecord, m Module, in []*Node) []*Node {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok {
				if _, mine := r.(*Error); !mine {
					panic(&Error{Msg: fmt.Sprintf("in %s (%s): %v", displayPath(rec.Path), TypeName(m), firstLine(err.Error())), Kinds: []error{err}})
				}
			}
			panic(r)
		}
	}()
	return m.Forward(c, in...)
}

func firstLine(s string) string {
	if i := strings.Index(s, "\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func (c *Ctx) after(rec *CallRecord, out []*Node) []*Node {
	for _, h := range c.hooks {
		mark := c.mark()
		if o := h.AfterCall(c, rec, out); o != nil {
			out = o
		}
		c.span(mark)
	}
	rec.Outputs = out
	return out
}

// Label names an intermediate value of the running module's forward, so that it can be
// read, saved, replaced or edited as `path.name`. Use the returned node from then on.
func (c *Ctx) Label(name string, x *Node) *Node { return c.LabelAxes(name, x) }

// LabelAxes is Label that also says what each axis of x is ("batch", "head", "query_pos",
// ...), so that users slicing the value know which index is a head and which a position.
// Give one name per axis, or none.
func (c *Ctx) LabelAxes(name string, x *Node, axes ...string) *Node {
	if len(axes) > 0 && len(axes) != x.Rank() {
		Errorf("in %s: label %q has %d axis names %v for a value of rank %d (shape %s): give one name per axis",
			displayPath(c.Path()), name, len(axes), axes, x.Rank(), x.Shape())
	}
	rec := c.Current()
	if rec == nil {
		return x
	}
	orig := x
	for _, h := range c.hooks {
		mark := c.mark()
		if y := h.OnLabel(c, rec, name, x); y != nil {
			x = y
		}
		c.span(mark)
	}
	rec.Labels = append(rec.Labels, Label{Name: name, Node: x, Orig: orig, Axes: append([]string(nil), axes...), OnDemand: c.onDemand})
	return x
}

// LabelOnDemand is LabelAxes for a value the forward does not need (x is built only for the
// label, and compiled programs leave it out unless someone reads it) and that is costly
// enough that caches of everything should not take it: they take it only when a pattern
// asks for it.
func (c *Ctx) LabelOnDemand(name string, x *Node, axes ...string) *Node {
	c.onDemand = true
	defer func() { c.onDemand = false }()
	return c.LabelAxes(name, x, axes...)
}

// LabelingOnDemand reports, to Hooks.OnLabel, whether the label being made is LabelOnDemand's.
func (c *Ctx) LabelingOnDemand() bool { return c.onDemand }

func (c *Ctx) mark() graph.NodeId { return graph.NodeId(len(c.G.Nodes())) }

func (c *Ctx) span(start graph.NodeId) {
	if end := c.mark(); end > start {
		c.hookSpans = append(c.hookSpans, [2]graph.NodeId{start, end})
	}
}

// HookSpans are the node-id ranges [start, end) that hooks (interventions, edits) added:
// captured graphs leave them out, so node names do not depend on interventions.
func (c *Ctx) HookSpans() [][2]graph.NodeId { return c.hookSpans }

// Param returns the running module's parameter called name.
func (c *Ctx) Param(name string) *Node {
	rec := c.Current()
	if rec == nil {
		Errorf("Param(%q) outside of any module's forward", name)
	}
	for _, p := range ParamsOf(rec.Module) {
		if p.Name == name {
			return c.ParamFn(Join(rec.Path, name), p)
		}
	}
	Errorf("module %q (%s) has no parameter %q", rec.Path, TypeName(rec.Module), name)
	return nil
}

// ParamAt returns the parameter with the given full name (for tied weights).
func (c *Ctx) ParamAt(fullName string, spec ParamSpec) *Node {
	return c.ParamFn(fullName, spec)
}

// Remap tells the records and every listener that nodes were replaced (old -> new).
func (c *Ctx) Remap(m map[*Node]*Node) {
	if len(m) == 0 {
		return
	}
	fix := func(ns []*Node) {
		for i, n := range ns {
			if r, ok := m[n]; ok {
				ns[i] = r
			}
		}
	}
	for _, rec := range c.calls {
		fix(rec.Inputs)
		fix(rec.Outputs)
		for i := range rec.Labels {
			if r, ok := m[rec.Labels[i].Node]; ok {
				rec.Labels[i].Node = r
			}
		}
	}
	for _, fn := range c.listeners {
		fn(m)
	}
}

// ReplaceAllUses re-emits every node created in (old, end) that depends on old, with old
// replaced by repl, and returns the old->new mapping (including old->repl). The originals
// stay in the graph but nothing uses them, so compiled programs do not compute them.
func ReplaceAllUses(g *graph.Graph, old, repl *Node, end graph.NodeId) map[*Node]*Node {
	return ReplaceUsesIn(g, old, repl, old.Id()+1, end)
}

// ReplaceUsesIn is ReplaceAllUses restricted to the nodes created in [start, end): an edit
// rewires only the uses inside the module whose forward it edits, not those of the module's
// callers that happen to be created after the value (a module's input is made by its caller).
func ReplaceUsesIn(g *graph.Graph, old, repl *Node, start, end graph.NodeId) map[*Node]*Node {
	m := map[*Node]*Node{old: repl}
	nodes := g.Nodes()
	for id := max(start, old.Id()+1); id < end && int(id) < len(nodes); id++ {
		n := nodes[id]
		ins := n.Inputs()
		changed := false
		newIns := make([]*Node, len(ins))
		for i, in := range ins {
			if r, ok := m[in]; ok {
				newIns[i] = r
				changed = true
			} else {
				newIns[i] = in
			}
		}
		if !changed {
			continue
		}
		if n.NumOutputs() > 1 {
			Errorf("cannot rewrite graph node #%d (%s): it has %d outputs", n.Id(), n.Type(), n.NumOutputs())
		}
		m[n] = n.CloneWithInputs(newIns...)
	}
	return m
}

// Paths lists every module path reachable from root (root itself is ""), depth first.
func Paths(root Module) []string {
	var out []string
	var walk func(prefix string, m Module)
	walk = func(prefix string, m Module) {
		out = append(out, prefix)
		for _, ch := range ChildrenOf(m) {
			walk(Join(prefix, ch.Name), ch.Module)
		}
	}
	walk("", root)
	return out
}

// Find returns the module at path under root: dotted or with [i], negative indices counting
// from the end of a list ("transformer.h[-1]"). Errors are ErrUnknownPath or ErrOutOfRange.
func Find(root Module, path string) (Module, error) {
	_, m, err := Names{Root: root}.Find(path)
	return m, err
}

func displayPath(p string) string {
	if p == "" {
		return "<root>"
	}
	return p
}

func childNames(m Module) []string {
	var names []string
	for _, ch := range ChildrenOf(m) {
		names = append(names, ch.Name)
	}
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

// suggest returns "; did you mean ...?" with the closest valid paths.
func suggest(root Module, path string) string {
	best := Closest(path, append(Paths(root), AltPaths(root)...), 3)
	if len(best) == 0 {
		return ""
	}
	return "; did you mean " + strings.Join(best, ", ") + "?"
}

// Closest returns up to n candidates nearest to s by edit distance.
func Closest(s string, candidates []string, n int) []string {
	type sc struct {
		c string
		d int
	}
	var all []sc
	for _, c := range candidates {
		if c == "" {
			continue
		}
		all = append(all, sc{c, editDistance(s, c)})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].d < all[j].d })
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		if all[i].d <= max(3, len(s)/2) {
			out = append(out, all[i].c)
		}
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// GraphSize is the number of nodes the graph has now: ids below it exist.
func GraphSize(c *Ctx) graph.NodeId { return c.mark() }

// Fusion: a backend's fused kernels (GELU, LayerNorm) are faster than the ops a module is
// written with, but they hide those ops from captured graphs and from edits, which find
// nodes by name. A builder turns fusion on for runs (SetFusion) and names the modules whose
// forward an edit rewrites: those and everything under them keep their plain ops.

// SetFusion allows fused kernels in this build, except under the given module paths.
func (c *Ctx) SetFusion(on bool, except []string) {
	fusionOn.Set(c, on)
	fusionExcept.Set(c, except)
}

var (
	fusionOn     = NewKey[bool]("fusion")
	fusionExcept = NewKey[[]string]("fusion exceptions")
)

// Fuse reports whether the running module may use a fused kernel.
func (c *Ctx) Fuse() bool {
	if !fusionOn.Get(c) {
		return false
	}
	path := c.Path()
	for _, p := range fusionExcept.Get(c) {
		if p == "" || path == p || strings.HasPrefix(path, p+".") {
			return false
		}
	}
	return true
}
