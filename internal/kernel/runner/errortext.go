package runner

import (
	"html"
	"regexp"
	"strings"
)

// A failing cell's kernel error often says only "exit status 1": the compiler's messages and a
// panic's stack go to the cell's stderr stream, or (GoNB's compile errors) to an HTML report.
// errorText gathers them as plain text for the CellError.

// errorOutputLines caps the text kept from a failing cell.
const errorOutputLines = 40

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// errorText returns the text of a failed cell's error outputs: its stderr streams and the
// displays that are error reports (HTML marked as stderr, as GoNB's compile errors are), the
// last errorOutputLines lines.
func errorText(outputs []map[string]any) string {
	var parts []string
	for _, o := range outputs {
		switch o["output_type"] {
		case "stream":
			if o["name"] == "stderr" {
				parts = append(parts, multiline(o["text"]))
			}
		case "display_data":
			data, _ := o["data"].(map[string]any)
			h := multiline(data["text/html"])
			if strings.Contains(h, "application/vnd.jupyter.stderr") || strings.Contains(h, "gonb-err-") {
				parts = append(parts, htmlText(h))
			}
		}
	}
	text := ansiEscape.ReplaceAllString(strings.Join(parts, "\n"), "")
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimRight(l, " \t\r"); strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > errorOutputLines {
		lines = append([]string{"..."}, lines[len(lines)-errorOutputLines:]...)
	}
	return strings.Join(lines, "\n")
}

// htmlText reduces an HTML error report to its text: no <style>, no tags, and without the
// hover-only source context blocks (class gonb-err-context) that repeat the cell's code.
func htmlText(h string) string {
	var b strings.Builder
	for len(h) > 0 {
		i := strings.IndexByte(h, '<')
		if i < 0 {
			b.WriteString(html.UnescapeString(h))
			break
		}
		b.WriteString(html.UnescapeString(h[:i]))
		h = h[i:]
		end := strings.IndexByte(h, '>')
		if end < 0 {
			break
		}
		tag := h[:end+1]
		h = h[end+1:]
		lower := strings.ToLower(tag)
		switch {
		case strings.HasPrefix(lower, "<style"):
			if j := strings.Index(strings.ToLower(h), "</style>"); j >= 0 {
				h = h[j+len("</style>"):]
			} else {
				h = ""
			}
		case strings.HasPrefix(lower, "<div") && strings.Contains(lower, "gonb-err-context"):
			h = skipElement(h, "div")
		case strings.HasPrefix(lower, "<div") || strings.HasPrefix(lower, "</div") || strings.HasPrefix(lower, "<br"):
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// skipElement returns h after the end tag that closes an element of kind tag already opened.
func skipElement(h, tag string) string {
	depth := 1
	open, close := "<"+tag, "</"+tag
	for depth > 0 {
		i := strings.IndexByte(h, '<')
		if i < 0 {
			return ""
		}
		h = h[i:]
		lower := strings.ToLower(h[:min(len(h), len(close)+1)])
		switch {
		case strings.HasPrefix(lower, close):
			depth--
		case strings.HasPrefix(lower, open):
			depth++
		}
		j := strings.IndexByte(h, '>')
		if j < 0 {
			return ""
		}
		h = h[j+1:]
	}
	return h
}
