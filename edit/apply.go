package edit

import (
	"fmt"
	"sort"
	"strings"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/module"
)

// Applying edits while a graph is built. An edit must change what the model computes: one
// whose node the compiled program would not compute (a value nothing returns, a node of the
// decomposed form of an op the backend fuses, a module whose result the model drops) or
// whose parent call never happens is an error, never a silent no-op.

// Hooks returns the module.Hooks that apply edits while a graph is built (one per build).
func Hooks(edits []*Edit) module.Hooks { return &hooks{edits: edits, count: map[*Edit]int{}} }

type hooks struct {
	edits     []*Edit
	applied   []*application
	count     map[*Edit]int
	listening bool
}

// application is one edit applied to one call.
type application struct {
	e    *Edit
	call *module.CallRecord
	out  *module.Node // the wrapper's output, followed through later rewrites
}

func (h *hooks) BeforeCall(c *module.Ctx, rec *module.CallRecord, in []*module.Node) ([]*module.Node, []*module.Node) {
	return nil, nil
}
func (h *hooks) OnLabel(c *module.Ctx, rec *module.CallRecord, name string, x *module.Node) *module.Node {
	return nil
}

func (h *hooks) AfterCall(c *module.Ctx, rec *module.CallRecord, out []*module.Node) []*module.Node {
	var result []*module.Node
	if !rec.Skipped {
		result = h.apply(c, rec, out)
	}
	if rec.Parent == nil {
		// The root call ends the forward: its outputs are the model's.
		final := out
		if result != nil {
			final = result
		}
		h.checkModel(c, final)
	}
	return result
}

// follow keeps the applications' wrapper outputs current when a later edit re-emits them.
func (h *hooks) follow(mp map[*module.Node]*module.Node) {
	for _, a := range h.applied {
		if r, ok := mp[a.out]; ok {
			a.out = r
		}
	}
}

func (h *hooks) apply(c *module.Ctx, rec *module.CallRecord, out []*module.Node) []*module.Node {
	var result []*module.Node
	// live maps the nodes the parent computed to the nodes that replaced them in earlier
	// edits of this call, so that a later edit acts on the values that are actually used.
	live := map[*module.Node]*module.Node{}
	var inlined, folded *Graph
	var mine []*application
	for _, e := range h.edits {
		if e.Parent != rec.Path || (e.Instance >= 0 && e.Instance != rec.Index) {
			continue
		}
		if !h.listening {
			h.listening = true
			c.OnRemap(h.follow)
		}
		if result == nil {
			result = append([]*module.Node(nil), out...)
		}
		if inlined == nil {
			// Once per call: names refer to the parent's own nodes, which later edits of
			// this call do not change (they add re-emitted nodes, followed through live).
			inlined = Capture(c.G, rec, false, c.HookSpans())
		}
		old, from := resolve(c, e, rec, inlined, &folded)
		if n, ok := live[old]; ok {
			old = n
		}
		wrapperStart := module.GraphSize(c)
		wrapped := c.CallModule(e.Wrapper, e.Module, old)
		if len(wrapped) != 1 {
			module.KindErrorf(module.ErrBadEdit, "edit %s: the wrapper must return one value, it returned %d", e, len(wrapped))
		}
		nw := wrapped[0]
		if !nw.Shape().Equal(old.Shape()) {
			panic(module.WithKind(module.NewError(module.ErrShape, "edit %s: the wrapper changes the shape of %q from %v to %v; an edit must keep the shape",
				e, e.Target, old.Shape().Dimensions, nw.Shape().Dimensions), module.ErrBadEdit))
		}
		// Every node of the parent made after the target and before the wrapper (its own
		// nodes and the re-emitted nodes of earlier edits) is rewired; nodes of the parent's
		// callers are not, even when made after the target (the parent's input).
		mp := module.ReplaceUsesIn(c.G, old, nw, max(rec.Start, from), wrapperStart)
		// Values read at or before the target (its label, the wrapper's input) keep the
		// original node; only what the parent computed from it is rewired.
		delete(mp, old)
		for i, o := range result {
			if r, ok := mp[o]; ok {
				result[i] = r
			} else if o == old {
				result[i] = nw
			}
		}
		for k, v := range live {
			if r, ok := mp[v]; ok {
				live[k] = r
			}
		}
		for k, v := range mp {
			if _, ok := live[k]; !ok {
				live[k] = v
			}
		}
		c.Remap(mp)
		a := &application{e: e, call: rec, out: nw}
		h.applied = append(h.applied, a)
		mine = append(mine, a)
		h.count[e]++
	}
	if len(mine) > 0 {
		checkCall(c, rec, inlined, mine, result)
	}
	return result
}

// resolve finds the node an edit names, and the first node id whose uses of it are rewired.
// Names are the inlined view's (the folded view shows the same names); a call_module row,
// in either view, is the child call's output as the parent received it.
func resolve(c *module.Ctx, e *Edit, rec *module.CallRecord, inlined *Graph, folded **Graph) (*module.Node, g.NodeId) {
	row := inlined.Find(e.Target)
	if row == nil {
		if *folded == nil {
			*folded = Capture(c.G, rec, true, c.HookSpans())
		}
		row = (*folded).Find(e.Target)
	}
	switch {
	case row == nil:
		names := inlined.Names()
		if *folded != nil {
			for _, n := range (*folded).Nodes {
				if n.Op == CallModule && inlined.Find(n.Name) == nil {
					names = append(names, n.Name)
				}
			}
		}
		module.KindErrorf(module.ErrBadEdit, "edit %s: no node %q in %s; nodes: %s", e, e.Target, displayPath(rec.Path), listNames(names))
	case row.Op == Output:
		module.KindErrorf(module.ErrBadEdit, "edit %s: %q is the output row of %s, not a node; edit the node it returns (%s)",
			e, e.Target, displayPath(rec.Path), strings.Join(row.Args, ", "))
	case row.Op == CallModule:
		ch := row.Call
		if len(ch.Outputs) != 1 {
			module.KindErrorf(module.ErrBadEdit, "edit %s: %q is the call of %s, which returns %d values; edit one of them inside it: edit.New(%q, node, ...)",
				e, e.Target, ch.Path, len(ch.Outputs), ch.Path)
		}
		// Only the parent's uses of what the child returned, not uses inside the child
		// or before the call (a child that returns its input returns an earlier node).
		return ch.Outputs[0], ch.End
	case row.Node == nil:
		module.KindErrorf(module.ErrBadEdit, "edit %s: %q in %s has no value to wrap", e, e.Target, displayPath(rec.Path))
	}
	return row.Node, rec.Start
}

// checkCall rejects the edits of this call whose wrapper output the call's result does not
// depend on: the program would not compute them.
func checkCall(c *module.Ctx, rec *module.CallRecord, inlined *Graph, mine []*application, result []*module.Node) {
	reach := reachable(result)
	for _, a := range mine {
		if reach[a.out] {
			continue
		}
		target := inlined.Find(a.e.Target)
		if target == nil || target.Node == nil {
			module.KindErrorf(module.ErrBadEdit, "edit %s: what %s returns does not depend on %q, so the edit would change nothing",
				a.e, displayPath(rec.Path), a.e.Target)
		}
		if f := fusedFor(c.G, target.Node, rec); f != nil {
			fname := rowName(inlined, f)
			module.KindErrorf(module.ErrBadEdit, "edit %s: node %q is part of the decomposed form of %s: the backend computes the fused node %q (%s) instead, "+
				"so the edit would change nothing; edit %q (or its inputs: %s) instead",
				a.e, a.e.Target, f.Type(), fname, f.Type(), fname, strings.Join(argNames(inlined, f), ", "))
		}
		module.KindErrorf(module.ErrBadEdit, "edit %s: node %q of %s is not used by what the module returns (no value its output depends on reads it), "+
			"so the edit would change nothing; nodes its output depends on near it: %s",
			a.e, a.e.Target, displayPath(rec.Path), strings.Join(liveNear(inlined, target.Node, reach), ", "))
	}
}

// checkModel rejects edits whose result the model's output does not depend on, and edits
// whose parent call never happened (unless the trace skipped it or a module above it).
func (h *hooks) checkModel(c *module.Ctx, outs []*module.Node) {
	reach := reachable(outs)
	for _, a := range h.applied {
		if !reach[a.out] {
			module.KindErrorf(module.ErrBadEdit, "edit %s: the model's output does not depend on what %s (call %d) returns, so the edit would change nothing",
				a.e, displayPath(a.call.Path), a.call.Index)
		}
	}
	for _, e := range h.edits {
		if h.count[e] > 0 {
			continue
		}
		calls, skipped := 0, false
		for _, r := range c.Calls() {
			if r.Path == e.Parent {
				calls++
			}
			if r.Skipped && (r.Path == "" || r.Path == e.Parent || strings.HasPrefix(e.Parent, r.Path+".")) {
				skipped = true
			}
		}
		switch {
		case skipped:
		case calls == 0:
			module.Errorf("edit %s: %s is not called in the model's forward, so the edit would change nothing", e, displayPath(e.Parent))
		default:
			module.Errorf("edit %s: %s is called %d time(s) in the model's forward; there is no call %d", e, displayPath(e.Parent), calls, e.Instance)
		}
	}
}

// reachable is the set of nodes the given outputs depend on: what a compiled program
// computes (a fused op's decomposed form is not an input of it).
func reachable(outs []*module.Node) map[*module.Node]bool {
	seen := map[*module.Node]bool{}
	stack := append([]*module.Node(nil), outs...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		stack = append(stack, n.Inputs()...)
	}
	return seen
}

// fusedFor returns the fused node whose decomposed form t belongs to, or nil. GoMLX builds
// a fused op's decomposed form first and the fused node right after it (a few nodes later
// at most, for the fused call's own reshapes); the decomposed form's result is used by
// nothing.
func fusedFor(gr *g.Graph, t *module.Node, rec *module.CallRecord) *module.Node {
	nodes := gr.Nodes()
	end := min(int(rec.End), len(nodes))
	down := map[*module.Node]bool{t: true}
	used := map[*module.Node]bool{}
	for id := int(t.Id()) + 1; id < len(nodes); id++ {
		for _, in := range nodes[id].Inputs() {
			used[in] = true
			if down[in] && id < end {
				down[nodes[id]] = true
			}
		}
	}
	for d := range down {
		if used[d] {
			continue
		}
		for id := int(d.Id()) + 1; id < end && id <= int(d.Id())+8; id++ {
			n := nodes[id]
			if down[n] {
				break
			}
			if strings.HasPrefix(n.Type().String(), "Fused") {
				return n
			}
		}
	}
	return nil
}

func rowName(gr *Graph, n *module.Node) string {
	for _, r := range gr.Nodes {
		if r.Node == n {
			return r.Name
		}
	}
	return fmt.Sprintf("%%%d", n.Id())
}

func argNames(gr *Graph, n *module.Node) []string {
	var out []string
	for _, in := range n.Inputs() {
		out = append(out, rowName(gr, in))
	}
	return out
}

// liveNear lists up to four named nodes the output depends on, nearest to n first.
func liveNear(gr *Graph, n *module.Node, reach map[*module.Node]bool) []string {
	type cand struct {
		name string
		dist int
	}
	var cs []cand
	for _, r := range gr.Nodes {
		if r.Node != nil && reach[r.Node] && r.Op == CallFunction {
			d := int(r.Node.Id()) - int(n.Id())
			cs = append(cs, cand{r.Name, max(d, -d)})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].dist < cs[j].dist })
	var out []string
	for i := 0; i < len(cs) && i < 4; i++ {
		out = append(out, cs[i].name)
	}
	if len(out) == 0 {
		return []string{"(none: the output is an input of the module)"}
	}
	return out
}

func listNames(names []string) string {
	if len(names) > 40 {
		names = append(names[:40:40], fmt.Sprintf("... (%d more)", len(names)-40))
	}
	return strings.Join(names, ", ")
}
