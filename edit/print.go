package edit

import (
	"fmt"
	"io"
	"os"
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

// PrintGraph prints the captured graph of the module at path as torch.fx's print_tabular
// does (opcode, name, target, args, kwargs), plus each value's shape.
func PrintGraph(m Capturer, path string, opts ...GraphOption) error {
	gr, err := m.Graph(path, opts...)
	if err != nil {
		return err
	}
	fmt.Fprint(os.Stdout, gr.Table())
	return nil
}

// Table renders the graph as aligned text.
func (gr *Graph) Table() string {
	rows := [][]string{{"opcode", "name", "target", "args", "kwargs", "shape"}}
	for _, n := range gr.Nodes {
		rows = append(rows, []string{n.Op, n.Name, n.Target, "(" + strings.Join(n.Args, ", ") + ")", "{" + n.Kwargs + "}", n.Shape})
	}
	return alignRows(rows)
}

func alignRows(rows [][]string) string {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for ri, r := range rows {
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
			} else {
				b.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))+2))
			}
		}
		b.WriteString("\n")
		if ri == 0 {
			for i, w := range widths {
				b.WriteString(strings.Repeat("-", w))
				if i < len(widths)-1 {
					b.WriteString("  ")
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Code renders the graph as readable code, one line per node.
func (gr *Graph) Code() string {
	var b strings.Builder
	var params []string
	for _, n := range gr.Nodes {
		if n.Op == Placeholder {
			params = append(params, n.Name)
		}
	}
	fmt.Fprintf(&b, "def forward(self, %s):  # %s %s\n", strings.Join(params, ", "), gr.Type, gr.Module)
	for _, n := range gr.Nodes {
		switch n.Op {
		case Placeholder:
		case GetAttr:
			fmt.Fprintf(&b, "    %s = self.%s  # %s\n", n.Name, n.Target, n.Shape)
		case CallModule:
			fmt.Fprintf(&b, "    %s = self.%s(%s)  # %s\n", n.Name, n.Target, strings.Join(n.Args, ", "), n.Shape)
		case CallFunction:
			args := strings.Join(n.Args, ", ")
			if n.Kwargs != "" {
				args += ", " + n.Kwargs
			}
			fmt.Fprintf(&b, "    %s = %s(%s)  # %s\n", n.Name, n.Target, args, n.Shape)
		case Output:
			fmt.Fprintf(&b, "    return (%s)\n", strings.Join(n.Args, ", "))
		}
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
