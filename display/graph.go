package display

import (
	"fmt"
	"strings"

	"github.com/gonnsight/gonnsight/edit"
)

// opColors gives each opcode its row background in GraphHTML.
var opColors = map[string]string{
	edit.Placeholder:  "#e3f2fd", // light blue
	edit.GetAttr:      "#fff8e1", // light amber
	edit.CallFunction: "#f1f8e9", // light green
	edit.CallModule:   "#f3e5f5", // light purple
	edit.Output:       "#fce4ec", // light pink
}

// nodes returns the graph's non-nil nodes.
func nodes(gr *edit.Graph) []*edit.GNode {
	var out []*edit.GNode
	for _, n := range gr.Nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// tuple prints names as a Python tuple, the way torch.fx prints args: (), (x,), (x, y).
func tuple(names []string) string {
	switch len(names) {
	case 0:
		return "()"
	case 1:
		return "(" + names[0] + ",)"
	}
	return "(" + strings.Join(names, ", ") + ")"
}

func kwargsString(kw string) string {
	kw = strings.TrimSpace(kw)
	if strings.HasPrefix(kw, "{") {
		return kw
	}
	return "{" + kw + "}"
}

func graphTitle(gr *edit.Graph) string {
	path := gr.Module
	if path == "" {
		path = "(root)"
	}
	if gr.Type == "" {
		return path
	}
	return path + " (" + gr.Type + ")"
}

var graphHeaders = []string{"opcode", "name", "target", "args", "kwargs", "shape"}

func graphRow(n *edit.GNode) []string {
	return []string{n.Op, n.Name, n.Target, tuple(n.Args), kwargsString(n.Kwargs), n.Shape}
}

// GraphText prints a captured graph as torch.fx's print_tabular does: one row per node with
// its opcode, name, target, args, kwargs and shape.
func GraphText(gr *edit.Graph) string {
	if gr == nil {
		return errorText("nil graph")
	}
	var rows [][]string
	for _, n := range nodes(gr) {
		rows = append(rows, graphRow(n))
	}
	return textTable(graphHeaders, rows, nil)
}

// GraphHTML renders a captured graph as a table whose rows are coloured by opcode; each row
// has the class "gns-op-<opcode>" and the shape cell shows the dtype on hover.
func GraphHTML(gr *edit.Graph) string {
	if gr == nil {
		return errorHTML("nil graph")
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<table class="gns-graph" style="%s">`, tableStyle)
	fmt.Fprintf(&b, `<caption style="%s">%s</caption>`, capStyle, esc(graphTitle(gr)))
	b.WriteString("<thead><tr>")
	for _, h := range graphHeaders {
		fmt.Fprintf(&b, `<th style="%s">%s</th>`, thStyle, h)
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for _, n := range nodes(gr) {
		bg, ok := opColors[n.Op]
		if !ok {
			bg = "#ffffff"
		}
		fmt.Fprintf(&b, `<tr class="gns-op-%s" style="background:%s">`, className(n.Op), bg)
		row := graphRow(n)
		for i, c := range row {
			title := ""
			if i == len(row)-1 && n.DType != "" {
				title = fmt.Sprintf(` title="%s"`, esc(n.DType+n.Shape))
			}
			fmt.Fprintf(&b, `<td style="%s"%s>%s</td>`, tdStyle, title, esc(c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody></table>")
	return b.String()
}

// className keeps letters, digits, '-' and '_'.
func className(s string) string {
	if s == "" {
		return "none"
	}
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// GraphCode prints a captured graph as readable code (torch.fx's print_readable): the
// placeholders are the forward's parameters, then one line per node with its shape, ending
// with the returned values.
func GraphCode(gr *edit.Graph) string {
	if gr == nil {
		return errorText("nil graph")
	}
	var b strings.Builder
	b.WriteString("# " + graphTitle(gr) + "\n")
	var params, shapes []string
	for _, n := range nodes(gr) {
		if n.Op == edit.Placeholder {
			params = append(params, n.Name)
			if n.Shape != "" {
				shapes = append(shapes, n.Name+": "+n.Shape)
			}
		}
	}
	b.WriteString("def forward(" + strings.Join(append([]string{"self"}, params...), ", ") + "):")
	if len(shapes) > 0 {
		b.WriteString("  # " + strings.Join(shapes, ", "))
	}
	b.WriteByte('\n')
	for _, n := range nodes(gr) {
		line := ""
		switch n.Op {
		case edit.Placeholder:
			continue
		case edit.Output:
			line = "return " + tuple(n.Args)
		case edit.GetAttr:
			line = n.Name + " = self." + n.Target
		case edit.CallModule:
			line = n.Name + " = self." + n.Target + "(" + strings.Join(n.Args, ", ") + ")"
		default:
			args := append([]string(nil), n.Args...)
			if kw := strings.Trim(strings.TrimSpace(n.Kwargs), "{}"); kw != "" {
				args = append(args, kw)
			}
			line = n.Name + " = " + n.Target + "(" + strings.Join(args, ", ") + ")"
		}
		if n.Op != edit.Output && n.Shape != "" {
			line += "  # " + n.Shape
		}
		b.WriteString("    " + line + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// ShowGraph displays a captured graph: a coloured table in a notebook, print_tabular text
// elsewhere.
func ShowGraph(gr *edit.Graph) {
	ShowHTML(GraphHTML(gr), GraphText(gr))
}
