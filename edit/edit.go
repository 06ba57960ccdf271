package edit

import (
	"fmt"
	"strings"

	"github.com/gonnsight/gonnsight/module"
)

// Edit inserts a wrapper module after a node of a module's forward: every use of the node
// is rewired to the wrapper's output (replace-all-uses), and the wrapper appears in the
// module tree at Parent + "." + Wrapper, where it can be traced like any module.
type Edit struct {
	Parent   string        // the module whose forward is edited, e.g. "transformer.h.3.attn"
	Target   string        // the node's name in the parent's captured graph, e.g. "query"
	Wrapper  string        // the wrapper's name, e.g. "query_wrapper"
	Module   module.Module // the wrapper: Identity() or any module of one input
	Instance int           // which call of the parent to edit (0 = first); -1 = every call
}

// New declares an edit. It does nothing until loaded (Model.LoadEdits).
func New(parentPath, targetNode, wrapperName string, m module.Module) *Edit {
	return declare(&Edit{Parent: module.NormalizePath(parentPath), Target: targetNode, Wrapper: wrapperName, Module: m, Instance: -1})
}

// OnCall restricts the edit to the n-th call of the parent (0-based).
func (e *Edit) OnCall(n int) *Edit { c := *e; c.Instance = n; return declare(&c) }

// WrapperPath is where the wrapper sits in the module tree.
func (e *Edit) WrapperPath() string { return module.Join(e.Parent, e.Wrapper) }

// Key identifies the edit across notebook cells.
func (e *Edit) Key() string {
	return fmt.Sprintf("%s:%s:%s:%d", e.Parent, e.Target, e.Wrapper, e.Instance)
}

func (e *Edit) String() string {
	return fmt.Sprintf("%s(%s.%s -> %s)", module.TypeName(e.Module), e.Parent, e.Target, e.Wrapper)
}

// Identity is the seed's WrapperModule: it passes its input through, so the wrapped value
// becomes addressable as a module's input and output.
func Identity() module.Module { return module.Identity{} }

// Scale is a wrapper that multiplies its input by a constant (the seed's EditModule with 1000).
func Scale(factor float64) module.Module { return &scale{factor} }

type scale struct{ f float64 }

func (s *scale) TypeName() string { return "EditModule" }
func (s *scale) Describe() string { return fmt.Sprintf("scale=%g", s.f) }
func (s *scale) Forward(c *module.Ctx, in ...*module.Node) []*module.Node {
	return []*module.Node{mulScalar(in[0], s.f)}
}

// Hooks returns the module.Hooks that apply edits while a graph is built.
func Hooks(edits []*Edit) module.Hooks { return &hooks{edits: edits} }

type hooks struct{ edits []*Edit }

func (h *hooks) BeforeCall(c *module.Ctx, rec *module.CallRecord, in []*module.Node) ([]*module.Node, []*module.Node) {
	return nil, nil
}
func (h *hooks) OnLabel(c *module.Ctx, rec *module.CallRecord, name string, x *module.Node) *module.Node {
	return nil
}

func (h *hooks) AfterCall(c *module.Ctx, rec *module.CallRecord, out []*module.Node) []*module.Node {
	var result []*module.Node
	// live maps the nodes the parent computed to the nodes that replaced them in earlier
	// edits of this call, so that a later edit acts on the values that are actually used.
	live := map[*module.Node]*module.Node{}
	var captured *Graph
	for _, e := range h.edits {
		if e.Parent != rec.Path || (e.Instance >= 0 && e.Instance != rec.Index) || rec.Skipped {
			continue
		}
		if result == nil {
			result = append([]*module.Node(nil), out...)
		}
		if captured == nil {
			// Once per call: names refer to the parent's own nodes, which later edits of
			// this call do not change (they add re-emitted nodes, followed through live).
			captured = Capture(c.G, rec, false, c.HookSpans())
		}
		target := captured.Find(e.Target)
		if target == nil || target.Node == nil {
			module.KindErrorf(module.ErrBadEdit, "edit %s: no node %q in %s; nodes: %s", e, e.Target, displayPath(rec.Path), nodeNames(captured))
		}
		old := target.Node
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
			// Both a bad edit and a shape mismatch.
			panic(&module.Error{Kinds: []error{module.ErrBadEdit, module.ErrShape}, Msg: fmt.Sprintf(
				"edit %s: the wrapper changes the shape of %q from %v to %v; an edit must keep the shape",
				e, e.Target, old.Shape().Dimensions, nw.Shape().Dimensions)})
		}
		// Every node made after the target and before the wrapper (the parent's own nodes
		// and the re-emitted nodes of earlier edits) is rewired.
		mp := module.ReplaceAllUses(c.G, old, nw, wrapperStart)
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
	}
	return result
}

func displayPath(p string) string {
	if p == "" {
		return "the root module"
	}
	return strings.TrimSpace(p)
}

func mulScalar(x *module.Node, f float64) *module.Node { return gMulScalar(x, f) }

// The edits declared in this process, so that a notebook cell can re-load by key the edits
// an earlier cell loaded (each cell is a new process that re-runs the declarations).
var declared = map[string]*Edit{}

func declare(e *Edit) *Edit {
	declared[e.Key()] = e
	return e
}

// Declared returns the edit declared in this process with the given identity, or nil.
func Declared(parent, target, wrapper string, instance int) *Edit {
	return declared[fmt.Sprintf("%s:%s:%s:%d", parent, target, wrapper, instance)]
}
