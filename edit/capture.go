// Package edit is gonnsight's FX layer: the captured graph of a module call (nodes with
// opcode, name, target, args, kwargs and shape, as torch.fx prints them), its printing, and
// Edits that insert a wrapper module after any node of a module's forward.
package edit

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/module"
)

// Opcodes, as in torch.fx.
const (
	Placeholder  = "placeholder"
	GetAttr      = "get_attr"
	CallFunction = "call_function"
	CallModule   = "call_module"
	Output       = "output"
)

// Graph is the captured graph of one module call.
type Graph struct {
	Module string // the module's path ("" for the root)
	Type   string // its type name
	Nodes  []*GNode
	Folded bool
}

// GNode is one row of a captured graph.
type GNode struct {
	Op     string
	Name   string
	Target string
	Args   []string
	Kwargs string
	Shape  string
	DType  string
	Node   *g.Node            // the graph node (nil for call_module and output rows)
	Call   *module.CallRecord // for call_module rows
}

// Find returns the node with the given name.
func (gr *Graph) Find(name string) *GNode {
	for _, n := range gr.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Names lists the names of the value-producing nodes (everything but output).
func (gr *Graph) Names() []string {
	var out []string
	for _, n := range gr.Nodes {
		if n.Op != Output {
			out = append(out, n.Name)
		}
	}
	return out
}

// Capture builds the captured graph of a recorded call. With folded, each child call is
// one call_module row; otherwise children are inlined (Dynamo's default), and children that
// created no operations (dropout at inference) still show as call_module rows.
// skip lists node-id ranges to leave out (nodes interventions added).
//
// Names are those of the inlined view in both views, so that a name means one node whatever
// view printed it (edits resolve names against the inlined view): the folded view shows a
// subset of the inlined rows under the same names, plus one call_module row per child call,
// named so as not to clash with any inlined name.
func Capture(gr *g.Graph, rec *module.CallRecord, folded bool, skip [][2]g.NodeId) *Graph {
	inlined := capture(gr, rec, false, skip, nil)
	if !folded {
		return inlined
	}
	return capture(gr, rec, true, skip, inlined)
}

// capture builds one view. ref, when given, is the inlined view whose names this one takes.
func capture(gr *g.Graph, rec *module.CallRecord, folded bool, skip [][2]g.NodeId, ref *Graph) *Graph {
	c := newCapturer(rec, folded, skip, ref)
	c.collectLabels(rec, "")
	for i, in := range rec.Inputs {
		name := "x"
		if i > 0 {
			name = fmt.Sprintf("x_%d", i)
		}
		name = c.nodeName(in, name)
		c.names[in] = name
		c.add(&GNode{Op: Placeholder, Name: name, Target: name, Node: in, Shape: dimsString(in), DType: in.DType().String()})
	}
	nodes := gr.Nodes()
	for id := rec.Start; id < rec.End && int(id) < len(nodes); id++ {
		c.noop(id)
		if c.skipped(id) {
			continue
		}
		if folded {
			if ch := c.inChild(id); ch != nil {
				c.emitCall(ch)
				continue
			}
		}
		c.emitNode(nodes[id])
	}
	c.noop(rec.End)
	// Children called after the last node (rare) still appear.
	for _, ch := range rec.Children {
		if !c.emitted[ch] && (folded || ch.Start == ch.End) {
			c.emitCall(ch)
		}
	}
	row := &GNode{Op: Output, Name: "output", Target: "output"}
	for _, o := range rec.Outputs {
		row.Args = append(row.Args, argName(o, c.names))
	}
	c.add(row)
	return c.out
}

// capturer holds the state of one capture: the rows so far and the names given to nodes.
type capturer struct {
	rec       *module.CallRecord
	folded    bool
	skip      [][2]g.NodeId
	out       *Graph
	names     map[*g.Node]string // the row name each node's value is known by
	counts    map[string]int     // per base name, the next suffix
	used      map[string]bool
	refNode   map[*g.Node]string // the inlined view's names (ref), which the folded view reuses
	refCall   map[*module.CallRecord]string
	labels    map[*g.Node]string // labelled values (query, attn_weights), by node
	emitted   map[*module.CallRecord]bool
	paramRows map[*g.Node]bool
}

func newCapturer(rec *module.CallRecord, folded bool, skip [][2]g.NodeId, ref *Graph) *capturer {
	c := &capturer{rec: rec, folded: folded, skip: skip,
		out:   &Graph{Module: rec.Path, Type: module.TypeName(rec.Module), Folded: folded},
		names: map[*g.Node]string{}, counts: map[string]int{}, used: map[string]bool{},
		refNode: map[*g.Node]string{}, refCall: map[*module.CallRecord]string{}, labels: map[*g.Node]string{},
		emitted: map[*module.CallRecord]bool{}, paramRows: map[*g.Node]bool{}}
	if ref != nil {
		for _, n := range ref.Nodes {
			c.used[n.Name] = true
			switch {
			case n.Call != nil:
				c.refCall[n.Call] = n.Name
			case n.Node != nil:
				c.refNode[n.Node] = n.Name
			}
		}
	}
	return c
}

func (c *capturer) add(row *GNode) { c.out.Nodes = append(c.out.Nodes, row) }

// unique returns base, or base_N when base is taken.
func (c *capturer) unique(base string) string {
	n := c.counts[base]
	c.counts[base]++
	name := base
	if n > 0 {
		name = fmt.Sprintf("%s_%d", base, n)
	}
	for c.used[name] { // a label such as "add_1" took the counter's next name
		n = c.counts[base]
		c.counts[base]++
		name = fmt.Sprintf("%s_%d", base, n)
	}
	c.used[name] = true
	return name
}

// nodeName is the name of a node row: the inlined view's, or a new one.
func (c *capturer) nodeName(n *g.Node, base string) string {
	if name, ok := c.refNode[n]; ok {
		return name
	}
	return c.unique(base)
}

func (c *capturer) collectLabels(r *module.CallRecord, prefix string) {
	for _, l := range r.Labels {
		n := l.Orig
		if n == nil {
			n = l.Node
		}
		if _, dup := c.labels[n]; !dup {
			c.labels[n] = module.Join(prefix, l.Name)
		}
	}
	if !c.folded {
		for _, ch := range r.Children {
			c.collectLabels(ch, module.Join(prefix, strings.TrimPrefix(strings.TrimPrefix(ch.Path, r.Path), ".")))
		}
	}
}

// skipped reports whether a hook (an intervention, not the module) made node id.
func (c *capturer) skipped(id g.NodeId) bool {
	for _, r := range c.skip {
		if r[0] <= c.rec.Start && r[1] >= c.rec.End {
			// A hook made this very call (an edit's wrapper): its nodes are the call's own.
			continue
		}
		if id >= r[0] && id < r[1] {
			return true
		}
	}
	return false
}

// inChild is the child call node id belongs to, if any.
func (c *capturer) inChild(id g.NodeId) *module.CallRecord {
	for _, ch := range c.rec.Children {
		if id >= ch.Start && id < ch.End {
			return ch
		}
	}
	return nil
}

// noop emits the children with no nodes of their own where they were called.
func (c *capturer) noop(upTo g.NodeId) {
	for _, ch := range c.rec.Children {
		if ch.Start == ch.End && ch.Start <= upTo && !c.emitted[ch] {
			c.emitCall(ch)
		}
	}
}

func (c *capturer) emitCall(ch *module.CallRecord) {
	if c.emitted[ch] {
		return
	}
	c.emitted[ch] = true
	rel := strings.TrimPrefix(strings.TrimPrefix(ch.Path, c.rec.Path), ".")
	name, ok := c.refCall[ch]
	if !ok {
		name = c.unique(strings.ReplaceAll(rel, ".", "_"))
	}
	row := &GNode{Op: CallModule, Name: name, Target: rel, Call: ch}
	for _, in := range ch.Inputs {
		row.Args = append(row.Args, argName(in, c.names))
	}
	if len(ch.Outputs) > 0 {
		row.Shape = dimsString(ch.Outputs[0])
		row.DType = ch.Outputs[0].DType().String()
		for _, o := range ch.Outputs {
			if _, seen := c.names[o]; !seen {
				c.names[o] = name
			}
		}
	}
	c.add(row)
}

func (c *capturer) emitParam(n *g.Node) {
	if c.paramRows[n] {
		return
	}
	c.paramRows[n] = true
	full := n.GetParameterName()
	rel := strings.TrimPrefix(strings.TrimPrefix(full, c.rec.Path), ".")
	if !strings.HasPrefix(full, c.rec.Path) {
		rel = full
	}
	name := c.nodeName(n, strings.ReplaceAll(rel, ".", "_"))
	c.names[n] = name
	c.add(&GNode{Op: GetAttr, Name: name, Target: rel, Node: n, Shape: dimsString(n), DType: n.DType().String()})
}

// emitNode emits an op's row (parameters as get_attr rows; scalar constants stay inline).
func (c *capturer) emitNode(n *g.Node) {
	switch n.Type() {
	case g.NodeTypeParameter:
		if _, isInput := c.names[n]; !isInput {
			c.emitParam(n)
		}
		return
	case g.NodeTypeConstant:
		if n.Shape().IsScalar() {
			return // shown inline as a literal argument
		}
	}
	var args []string
	for _, in := range n.Inputs() {
		if in.Type() == g.NodeTypeParameter {
			if _, ok := c.names[in]; !ok {
				c.emitParam(in)
			}
		}
		args = append(args, argName(in, c.names))
	}
	base := snake(n.Type().String())
	if l, ok := c.labels[n]; ok {
		base = strings.ReplaceAll(l, ".", "_")
	}
	name := c.nodeName(n, base)
	c.names[n] = name
	c.add(&GNode{Op: CallFunction, Name: name, Target: n.Type().String(), Args: args,
		Kwargs: kwargs(n), Node: n, Shape: dimsString(n), DType: n.DType().String()})
}

func argName(n *g.Node, names map[*g.Node]string) string {
	if name, ok := names[n]; ok {
		return name
	}
	if n.Type() == g.NodeTypeConstant && n.Shape().IsScalar() {
		if t := n.ConstantValue(); t != nil {
			return fmt.Sprint(t.Value())
		}
	}
	return fmt.Sprintf("%%%d", n.Id())
}

func dimsString(n *g.Node) string {
	return fmt.Sprint(n.Shape().Dimensions)
}

// snake turns "DotGeneral" into "dot_general".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

var (
	nodeRef = regexp.MustCompile(`\w+=\[#\d+\](, )?|\[#\d+\](, )?`)
	// Parameters left at their defaults say nothing: empty axis lists, unset dtypes.
	emptyKwarg = regexp.MustCompile(`\w+=\[\](, )?|config=\{AccumulatorDType:InvalidDType OutputDType:InvalidDType\}(, )?`)
)

// kwargs extracts the op's static parameters from GoMLX's description of the node
// ("ReduceSum(x=[#5], axes=[1])" -> "axes=[1]").
func kwargs(n *g.Node) string {
	if n.Type() == g.NodeTypeParameter {
		return ""
	}
	s := n.String()
	// "Node #12 [alias] Op(params) [StopGradient] -> [shape] - mem: ...": keep what is
	// inside Op's parentheses (they nest: shapes print as "(Float32)[2, 3]").
	i := strings.Index(s, n.Type().String()+"(")
	if i < 0 {
		return ""
	}
	s = s[i+len(n.Type().String())+1:]
	depth := 0
	for j, r := range s {
		if r == '(' {
			depth++
		} else if r == ')' {
			if depth == 0 {
				s = s[:j]
				break
			}
			depth--
		}
	}
	s = nodeRef.ReplaceAllString(s, "")
	s = emptyKwarg.ReplaceAllString(s, "")
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ","))
	return fxStyle(s)
}

var (
	intList  = regexp.MustCompile(`\[(-?\d+(?: -?\d+)*)\]`)
	dtypeDim = regexp.MustCompile(`\((\w+)\)\[([\d, ]*)\]`)
)

// fxStyle writes GoMLX's parameter values as torch.fx prints them: integer lists as tuples
// ("[0 2 1 3]" -> "(0, 2, 1, 3)", "[3]" -> "(3,)") and shapes as dtype[dims]
// ("(Float32)[1, 4]" -> "float32[1, 4]").
func fxStyle(s string) string {
	s = dtypeDim.ReplaceAllStringFunc(s, func(m string) string {
		p := dtypeDim.FindStringSubmatch(m)
		return strings.ToLower(p[1]) + "[" + p[2] + "]"
	})
	return intList.ReplaceAllStringFunc(s, func(m string) string {
		parts := strings.Fields(m[1 : len(m)-1])
		if len(parts) == 1 {
			return "(" + parts[0] + ",)"
		}
		return "(" + strings.Join(parts, ", ") + ")"
	})
}
