package edit

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// GraphOption configures a capture.
type GraphOption func(*GraphOptions)

// GraphOptions are the settings of a capture.
type GraphOptions struct {
	Folded bool // one call_module row per child call instead of inlining children
	Input  any  // the input to capture with (a prompt, ids or a tensor); a default otherwise
	Call   int  // which call of the module (0-based)
}

// Folded shows each child call as one call_module row.
func Folded() GraphOption { return func(o *GraphOptions) { o.Folded = true } }

// WithInput captures with a given model input.
func WithInput(x any) GraphOption { return func(o *GraphOptions) { o.Input = x } }

// OnCallN captures the n-th call of the module.
func OnCallN(n int) GraphOption { return func(o *GraphOptions) { o.Call = n } }

// Capturer is a model that can capture the graph of one of its modules (nnsight.Model).
type Capturer interface {
	Graph(path string, opts ...GraphOption) (*Graph, error)
	Explain(input any) (*Explanation, error)
}

// PrintGraph prints the captured graph of the module at path to standard output, as
// FprintGraph does.
func PrintGraph(m Capturer, path string, opts ...GraphOption) error {
	return FprintGraph(os.Stdout, m, path, opts...)
}

// FprintGraph writes the captured graph of the module at path to w as torch.fx's
// print_tabular does (opcode, name, target, args, kwargs), plus each value's shape: the text
// of (*Graph).Table.
func FprintGraph(w io.Writer, m Capturer, path string, opts ...GraphOption) error {
	gr, err := m.Graph(path, opts...)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, gr.Table())
	return err
}

// TableCells returns the cells of Table: the header, then one row per node (nil nodes
// skipped) with args as a Python tuple, the way torch.fx prints them: (), (x,), (x, y).
// Renderers of other forms (display's HTML) use these cells, so every form reads the same.
func (gr *Graph) TableCells() [][]string {
	rows := [][]string{{"opcode", "name", "target", "args", "kwargs", "shape"}}
	if gr == nil {
		return rows
	}
	for _, n := range gr.Nodes {
		if n != nil {
			rows = append(rows, []string{n.Op, n.Name, n.Target, tuple(n.Args), "{" + kwargsOf(n) + "}", n.Shape})
		}
	}
	return rows
}

// Table renders the graph as torch.fx's print_tabular does: aligned columns under a header
// and a rule, one line per node, each line ending in a newline.
func (gr *Graph) Table() string {
	if gr == nil {
		return "nil graph\n"
	}
	return alignRows(gr.TableCells())
}

// tuple prints names as a Python tuple: (), (x,), (x, y).
func tuple(names []string) string {
	if len(names) == 1 {
		return "(" + names[0] + ",)"
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// kwargsOf returns a node's keyword arguments without braces.
func kwargsOf(n *GNode) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(n.Kwargs), "{"), "}")
}

// title names the graph's module and type: "layer1 (WrappedLayer)", "(root) (M)".
func (gr *Graph) title() string {
	path := gr.Module
	if path == "" {
		path = "(root)"
	}
	if gr.Type == "" {
		return path
	}
	return path + " (" + gr.Type + ")"
}

func alignRows(rows [][]string) string {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		var l strings.Builder
		for i, c := range cells {
			l.WriteString(c)
			if i < len(cells)-1 {
				l.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteByte('\n')
	}
	for ri, r := range rows {
		line(r)
		if ri == 0 {
			rule := make([]string, len(widths))
			for i, w := range widths {
				rule[i] = strings.Repeat("-", w)
			}
			line(rule)
		}
	}
	return b.String()
}

// Code renders the graph as readable code (torch.fx's print_readable): a comment naming the
// module, the placeholders as the forward's parameters, one line per node with its shape,
// and the returned values as a tuple.
func (gr *Graph) Code() string {
	if gr == nil {
		return "nil graph\n"
	}
	var b strings.Builder
	b.WriteString("# " + gr.title() + "\n")
	params, shapes := []string{"self"}, []string(nil)
	for _, n := range gr.Nodes {
		if n != nil && n.Op == Placeholder {
			params = append(params, n.Name)
			if n.Shape != "" {
				shapes = append(shapes, n.Name+": "+n.Shape)
			}
		}
	}
	b.WriteString("def forward(" + strings.Join(params, ", ") + "):")
	if len(shapes) > 0 {
		b.WriteString("  # " + strings.Join(shapes, ", "))
	}
	b.WriteByte('\n')
	for _, n := range gr.Nodes {
		if n == nil || n.Op == Placeholder {
			continue
		}
		var line string
		switch n.Op {
		case Output:
			line = "return " + tuple(n.Args)
		case GetAttr:
			line = n.Name + " = self." + n.Target
		case CallModule:
			line = n.Name + " = self." + n.Target + "(" + strings.Join(n.Args, ", ") + ")"
		default:
			args := slices.Clone(n.Args)
			if kw := kwargsOf(n); kw != "" {
				args = append(args, kw)
			}
			line = n.Name + " = " + n.Target + "(" + strings.Join(args, ", ") + ")"
		}
		if n.Op != Output && n.Shape != "" {
			line += "  # " + n.Shape
		}
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}

// Explanation summarises how a model's forward was captured (torch._dynamo.explain).
type Explanation struct {
	GraphCount      int
	GraphBreakCount int
	OpCount         int
	OpsPerGraph     [][]string
	BreakReasons    []string
	ModuleCalls     int
	OpTypes         map[string]int
}

func (e *Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Graph Count: %d\nGraph Break Count: %d\nOp Count: %d\nModule Calls: %d\n",
		e.GraphCount, e.GraphBreakCount, e.OpCount, e.ModuleCalls)
	b.WriteString("Break Reasons:")
	if len(e.BreakReasons) == 0 {
		b.WriteString(" none (the whole forward is one graph)\n")
	} else {
		b.WriteString("\n")
		for _, r := range e.BreakReasons {
			fmt.Fprintf(&b, "  %s\n", r)
		}
	}
	b.WriteString("Ops per Graph:\n")
	for i, ops := range e.OpsPerGraph {
		fmt.Fprintf(&b, "  Graph %d: %d ops\n", i, len(ops))
	}
	var kinds []string
	for k := range e.OpTypes {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if e.OpTypes[kinds[i]] != e.OpTypes[kinds[j]] {
			return e.OpTypes[kinds[i]] > e.OpTypes[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	b.WriteString("Op types:")
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s=%d", k, e.OpTypes[k])
	}
	b.WriteString("\n")
	return b.String()
}

// Explain prints the explanation of a model's capture to w (os.Stdout when nil).
func Explain(m Capturer, input any, w io.Writer) (*Explanation, error) {
	e, err := m.Explain(input)
	if err != nil {
		return nil, err
	}
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprint(w, e.String())
	return e, nil
}
