package display

import (
	"regexp"
	"strings"
)

// treeToken finds what treeHTML colours in a line of a printed module tree:
// "(name):", "[edit]", "12 x" and type names before "(".
var treeToken = regexp.MustCompile(`\(([^()\s]+)\):|\[edit\]|\b\d+ x\b|([A-Za-z_][A-Za-z0-9_.]*)\(`)

const (
	treeNameColor = "#8250df" // (name):
	treeTypeColor = "#0550ae" // TypeName(
	treeEditColor = "#bc4c00" // [edit]
	treeRepColor  = "#57606a" // 0-11: 12 x
)

// treeHTML shows a printed module tree (the model's String()) in a <pre>, colouring child
// names, type names, repeat counts and loaded edits.
func treeHTML(tree string) string {
	var b strings.Builder
	b.WriteString(`<pre class="gns-tree" style="font:12px monospace;line-height:1.35;margin:0;color:#24292f;background:#fff">`)
	span := func(color, text string, bold bool) {
		w := ""
		if bold {
			w = ";font-weight:bold"
		}
		b.WriteString(`<span style="color:` + color + w + `">` + esc(text) + `</span>`)
	}
	for i, line := range strings.Split(tree, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		last := 0
		for _, m := range treeToken.FindAllStringSubmatchIndex(line, -1) {
			b.WriteString(esc(line[last:m[0]]))
			switch {
			case m[2] >= 0: // (name):
				b.WriteString("(")
				span(treeNameColor, line[m[2]:m[3]], false)
				b.WriteString("):")
			case m[4] >= 0: // Type(
				span(treeTypeColor, line[m[4]:m[5]], true)
				b.WriteString("(")
			case line[m[0]] == '[':
				span(treeEditColor, line[m[0]:m[1]], true)
			default:
				span(treeRepColor, line[m[0]:m[1]], false)
			}
			last = m[1]
		}
		b.WriteString(esc(line[last:]))
	}
	b.WriteString(`</pre>`)
	return b.String()
}

// ShowTree displays a printed module tree, coloured in a notebook.
func ShowTree(tree string) {
	ShowHTML(treeHTML(tree), tree)
}
