// Package module is gonnsight's nn.Module: named modules with children, parameters and a
// forward written with GoMLX graph ops, where every child call goes through a Ctx that
// records it and lets tracing and edits act on its inputs, outputs and labelled values.
//
// Building versus running: a Forward runs once per graph build, with *graph.Node values;
// the resulting graph is compiled and run elsewhere (package engine). Nothing here computes.
package module

import (
	"reflect"
	"strings"

	"github.com/gomlx/gomlx/core/graph"
)

// Node is the graph value modules pass around (a GoMLX *graph.Node).
type Node = graph.Node

// Module is one piece of a network. Forward receives the call context and its inputs and
// returns its outputs; it calls children through c.Call so that they are recorded.
type Module interface {
	Forward(c *Ctx, in ...*Node) []*Node
}

// Parent is implemented by modules that have children, in the order they print.
type Parent interface {
	Children() []Child
}

// Child is a named sub-module.
type Child struct {
	Name   string
	Module Module
}

// Parameterized is implemented by modules that own parameters.
type Parameterized interface {
	Params() []ParamSpec
}

// ParamSpec declares a float32 parameter owned by a module.
type ParamSpec struct {
	Name  string
	Shape []int
	Init  Init
}

// Init says how a parameter is initialised when no weights are loaded.
type Init struct {
	Kind  string // "normal", "zeros", "ones", "value"
	Std   float64
	Value float64
}

var (
	// InitZeros and InitOnes initialize a parameter with zeros or ones.
	InitZeros = Init{Kind: "zeros"}
	InitOnes  = Init{Kind: "ones"}
)

// Normal is N(0, std) initialisation.
func Normal(std float64) Init { return Init{Kind: "normal", Std: std} }

// Named is implemented by modules that want a type name other than their Go type's.
type Named interface {
	TypeName() string
}

// Describer gives the text inside the parentheses of a printed leaf, e.g.
// "in_features=768, out_features=3072".
type Describer interface {
	Describe() string
}

// TypeName is the name a module prints with: TypeName() if defined, else its Go type.
func TypeName(m Module) string {
	if n, ok := m.(Named); ok {
		return n.TypeName()
	}
	t := reflect.TypeOf(m)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// ChildrenOf returns m's children (nil for leaves).
func ChildrenOf(m Module) []Child {
	if p, ok := m.(Parent); ok {
		return p.Children()
	}
	return nil
}

// ParamsOf returns m's own parameters (not its children's).
func ParamsOf(m Module) []ParamSpec {
	if p, ok := m.(Parameterized); ok {
		return p.Params()
	}
	return nil
}

// Join joins path elements with dots, skipping empty ones.
func Join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// NormalizePath accepts "h[3]", "h.3", "transformer.h[3].attn" and returns dotted form.
func NormalizePath(p string) string {
	p = strings.TrimSpace(p)
	p = strings.ReplaceAll(p, "[", ".")
	p = strings.ReplaceAll(p, "]", "")
	p = strings.ReplaceAll(p, "..", ".")
	return strings.Trim(p, ".")
}

// Func adapts a function to a Module with no parameters or children.
type Func struct {
	Name string
	Fn   func(c *Ctx, in ...*Node) []*Node
}

func (f *Func) Forward(c *Ctx, in ...*Node) []*Node { return f.Fn(c, in...) }
func (f *Func) TypeName() string {
	if f.Name != "" {
		return f.Name
	}
	return "Func"
}

// Fn1 wraps a one-input one-output function as a Module.
func Fn1(name string, fn func(x *Node) *Node) Module {
	return &Func{Name: name, Fn: func(c *Ctx, in ...*Node) []*Node {
		return []*Node{fn(in[0])}
	}}
}
