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

// GraphHTML renders a captured graph as a table whose rows are coloured by opcode; each row
// has the class "gns-op-<opcode>" and the shape cell shows the dtype on hover.
func GraphHTML(gr *edit.Graph) string {
	if gr == nil {
		return errorHTML("nil graph")
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<table class="gns-graph" style="%s">`, tableStyle)
	fmt.Fprintf(&b, `<caption style="%s">%s</caption>`, capStyle, esc(graphTitle(gr)))
	cells := gr.TableCells() // the header, then a row per non-nil node: the text table's cells
	b.WriteString("<thead><tr>")
	for _, h := range cells[0] {
		fmt.Fprintf(&b, `<th style="%s">%s</th>`, thStyle, h)
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for i, n := range nodes(gr) {
		bg, ok := opColors[n.Op]
		if !ok {
			bg = "#ffffff"
		}
		fmt.Fprintf(&b, `<tr class="gns-op-%s" style="background:%s">`, className(n.Op), bg)
		row := cells[i+1]
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

// ShowGraph displays a captured graph: a coloured table in a notebook, with edit's
// print_tabular text ((*edit.Graph).Table) as its text/plain form and outside notebooks.
func ShowGraph(gr *edit.Graph) {
	ShowHTML(GraphHTML(gr), strings.TrimSuffix(gr.Table(), "\n"))
}
