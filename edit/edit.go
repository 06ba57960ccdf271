package edit

import (
	"fmt"
	"strings"

	"github.com/gonnsight/gonnsight/module"
)

// Edit inserts a wrapper module after a node of a module's forward: every use of the node
// is rewired to the wrapper's output (replace-all-uses), and the wrapper appears in the
// module tree at Parent + "." + Wrapper, where it can be traced like any module.
//
// An Edit is a value: what it is, for comparing edits and re-creating one in another
// notebook cell, is its Spec.
type Edit struct {
	Parent   string        // the module whose forward is edited, e.g. "transformer.h.3.attn"
	Target   string        // the node's name in the parent's captured graph, e.g. "query"
	Wrapper  string        // the wrapper's name, e.g. "query_wrapper"
	Module   module.Module // the wrapper: Identity() or any module of one input
	Instance int           // which call of the parent to edit (0 = first); -1 = every call
}

// New makes an edit: a value that does nothing until loaded (Model.LoadEdits).
func New(parentPath, targetNode, wrapperName string, m module.Module) *Edit {
	return &Edit{Parent: module.NormalizePath(parentPath), Target: targetNode, Wrapper: wrapperName, Module: m, Instance: -1}
}

// OnCall restricts the edit to the n-th call of the parent (0-based).
func (e *Edit) OnCall(n int) *Edit { c := *e; c.Instance = n; return &c }

// WrapperPath is where the wrapper sits in the module tree.
func (e *Edit) WrapperPath() string { return module.Join(e.Parent, e.Wrapper) }

// Key identifies where the edit acts (not what its wrapper is: see Spec).
func (e *Edit) Key() string {
	return fmt.Sprintf("%s:%s:%s:%d", e.Parent, e.Target, e.Wrapper, e.Instance)
}

func (e *Edit) String() string {
	return fmt.Sprintf("%s(%s.%s -> %s)", module.TypeName(e.Module), e.Parent, e.Target, e.Wrapper)
}

// Spec is what an edit is, as plain data: where it acts and what its wrapper module is (its
// type name, and its printed tree: Describe() strings, children and parameter shapes). Two
// edits with equal specs are interchangeable as far as gonnsight can tell.
type Spec struct {
	Parent   string `json:"parent"`
	Target   string `json:"target"`
	Wrapper  string `json:"wrapper"`
	Instance int    `json:"instance"`
	Kind     string `json:"kind"`   // module.TypeName of the wrapper
	Module   string `json:"module"` // the wrapper's printed tree, e.g. "EditModule(scale=1000)"
}

// Spec returns the edit's identity.
func (e *Edit) Spec() Spec {
	return Spec{Parent: e.Parent, Target: e.Target, Wrapper: e.Wrapper, Instance: e.Instance,
		Kind: module.TypeName(e.Module), Module: module.Tree(e.Module, nil, true)}
}

// SamePlace reports whether two specs edit the same node with the same wrapper name.
func (s Spec) SamePlace(o Spec) bool {
	return s.Parent == o.Parent && s.Target == o.Target && s.Wrapper == o.Wrapper
}

func (s Spec) String() string {
	call := ""
	if s.Instance >= 0 {
		call = fmt.Sprintf(" (call %d)", s.Instance)
	}
	return fmt.Sprintf("%s.%s -> %s%s with %s", s.Parent, s.Target, s.Wrapper, call, oneLine(s.Module))
}

// oneLine folds a printed module tree onto one line for messages.
func oneLine(tree string) string {
	fields := strings.Fields(tree)
	return strings.ReplaceAll(strings.Join(fields, " "), "( ", "(")
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

func displayPath(p string) string {
	if p == "" {
		return "the root module"
	}
	return strings.TrimSpace(p)
}

func mulScalar(x *module.Node, f float64) *module.Node { return gMulScalar(x, f) }
