// Package display renders gonnsight's results (captured graphs, tensors, attention, module trees,
// next-token tables, run diffs) as HTML in a GoNB notebook and as plain text everywhere else.
//
// Heatmaps, attention patterns and the logit lens are also pictures: an SVG with titled axes and
// a ticked colour bar, shown through an <img> in the HTML (which Jupyter keeps in untrusted
// notebooks, where it strips styles) and sent as image/svg+xml beside it. Options (Center, Min,
// Max, Diverging, Sequential, LogShading, RankShading, Axes, ValueTitle, Layer) choose the
// colours and titles.
package display

import (
	"fmt"
	"html"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/protocol"
)

// stdout is where Show* writes outside a notebook when set (tests replace it); nil means
// os.Stdout at the time of the call.
var stdout io.Writer

// ShowHTML displays html in a notebook, with text as the text/plain alternative that
// headless runs and text exports keep; outside a notebook it prints text to stdout.
func ShowHTML(html, text string) {
	show(map[protocol.MIMEType]any{protocol.MIMETextHTML: html}, text)
}

// showPicture displays html together with svg (an SVG document) as image/svg+xml in one
// output, so that viewers which drop or sanitize HTML still have the picture; text is the
// text/plain alternative and what is printed outside a notebook.
func showPicture(html, svg, text string) {
	data := map[protocol.MIMEType]any{protocol.MIMETextHTML: html}
	if svg != "" {
		data[protocol.MIMEImageSVG] = svg
	}
	show(data, text)
}

func show(data map[protocol.MIMEType]any, text string) {
	if gonbui.IsNotebook && gonbui.Error() == nil {
		data[protocol.MIMETextPlain] = text
		gonbui.SendData(&protocol.DisplayData{Data: data})
		// GoNB drops displays still in the pipe when the cell's process exits.
		gonbui.Sync()
		if gonbui.Error() == nil {
			return
		}
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	w := stdout
	if w == nil {
		w = os.Stdout
	}
	_, _ = io.WriteString(w, text)
}

// VisibleToken makes a token's whitespace visible: leading and trailing spaces become "␣",
// newlines "⏎", tabs "⇥" and other control characters their Unicode control pictures.
func VisibleToken(s string) string {
	if s == "" {
		return s
	}
	runes := []rune(s)
	first, last := 0, len(runes)-1
	for first < len(runes) && runes[first] == ' ' {
		first++
	}
	for last >= first && runes[last] == ' ' {
		last--
	}
	var b strings.Builder
	for i, r := range runes {
		switch {
		case r == ' ' && (i < first || i > last):
			b.WriteRune('␣')
		case r == '\n':
			b.WriteRune('⏎')
		case r == '\t':
			b.WriteRune('⇥')
		case r < 0x20:
			b.WriteRune(0x2400 + r)
		case r == 0x7f:
			b.WriteRune('␡')
		case r == utf8.RuneError:
			b.WriteRune('�')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// esc escapes text for HTML element content and attribute values.
func esc(s string) string { return html.EscapeString(s) }

// tok renders a token for HTML: whitespace made visible, then escaped.
func tok(s string) string { return esc(VisibleToken(s)) }

// errorText and errorHTML report inputs a renderer cannot draw; renderers never panic.
func errorText(format string, args ...any) string {
	return "display: " + fmt.Sprintf(format, args...)
}

func errorHTML(format string, args ...any) string {
	return `<pre style="color:#b00020">` + esc(errorText(format, args...)) + `</pre>`
}

// preHTML wraps text in a <pre> block.
func preHTML(text string) string {
	return `<pre style="font:12px monospace;line-height:1.35;margin:0">` + esc(text) + `</pre>`
}

// width counts runes, which is the printed width for the tokens and numbers shown here.
func width(s string) int { return utf8.RuneCountInString(s) }

func padRight(s string, w int) string {
	if n := width(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

func padLeft(s string, w int) string {
	if n := width(s); n < w {
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// textTable lays out rows under headers with two spaces between columns and a dashed rule
// under the headers, like Python's tabulate "simple" format that torch.fx prints with.
// rightAlign marks the columns (numbers) aligned to the right.
func textTable(headers []string, rows [][]string, rightAlign map[int]bool) string {
	ncol := len(headers)
	for _, r := range rows {
		ncol = max(ncol, len(r))
	}
	widths := make([]int, ncol)
	for i, h := range headers {
		widths[i] = width(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], width(c))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		var parts []string
		for i := 0; i < ncol; i++ {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			if rightAlign[i] {
				parts = append(parts, padLeft(c, widths[i]))
			} else {
				parts = append(parts, padRight(c, widths[i]))
			}
		}
		b.WriteString(strings.TrimRight(strings.Join(parts, "  "), " "))
		b.WriteByte('\n')
	}
	if len(headers) > 0 {
		line(headers)
		rule := make([]string, ncol)
		for i, w := range widths {
			rule[i] = strings.Repeat("-", w)
		}
		line(rule)
	}
	for _, r := range rows {
		line(r)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Shared inline styles: notebooks' stylesheets right-align and stripe table cells, so every
// cell carries its own style.
const (
	tableStyle = `border-collapse:collapse;font:12px monospace;color:#000;margin:4px 0`
	thStyle    = `text-align:left;padding:2px 8px;border-bottom:1px solid #888;background:#f5f5f5;color:#000;font-weight:bold`
	tdStyle    = `text-align:left;padding:2px 8px;border-bottom:1px solid #e0e0e0;white-space:pre;color:#000`
	tdNumStyle = `text-align:right;padding:2px 8px;border-bottom:1px solid #e0e0e0;white-space:pre;color:#000`
	capStyle   = `caption-side:top;text-align:left;font:bold 12px sans-serif;padding:2px 0;color:inherit`
)

// htmlTable renders a simple table; cells are HTML already escaped by the caller.
func htmlTable(class, caption string, headers []string, rows [][]string, rightAlign map[int]bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<table class="%s" style="%s">`, class, tableStyle)
	if caption != "" {
		fmt.Fprintf(&b, `<caption style="%s">%s</caption>`, capStyle, caption)
	}
	b.WriteString("<thead><tr>")
	for i, h := range headers {
		st := thStyle
		if rightAlign[i] {
			st = strings.Replace(st, "text-align:left", "text-align:right", 1)
		}
		fmt.Fprintf(&b, `<th style="%s">%s</th>`, st, h)
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for _, r := range rows {
		b.WriteString("<tr>")
		for i, c := range r {
			st := tdStyle
			if rightAlign[i] {
				st = tdNumStyle
			}
			fmt.Fprintf(&b, `<td style="%s">%s</td>`, st, c)
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody></table>")
	return b.String()
}

// num formats a value compactly for tables and hovers.
func num(v float32) string {
	return fmt.Sprintf("%.4g", v)
}
