package runner

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// The run header: a markdown cell at the top of an executed notebook that shows, in the
// notebook itself, how it was run (the same facts as metadata.gonnsight, which viewers hide).
// It is marked in its metadata and replaced on every run.

// headerMarker is the key of the header cell's metadata.gonnsight object.
const headerMarker = "run_header"

// headerComment starts the header's source, so the cell is recognized even where cell metadata
// was lost.
const headerComment = "<!-- gonnsight run header: rewritten by every `gonnsight run` -->"

func isRunHeader(c map[string]any) bool {
	if c == nil || c["cell_type"] != "markdown" {
		return false
	}
	if md, ok := c["metadata"].(map[string]any); ok {
		if g, ok := md[MetadataKey].(map[string]any); ok && g[headerMarker] == true {
			return true
		}
	}
	return strings.HasPrefix(cellSource(c), headerComment)
}

// removeRunHeader drops the header cells of earlier runs.
func removeRunHeader(nb map[string]any) {
	raw, _ := nb["cells"].([]any)
	kept := make([]any, 0, len(raw))
	for _, c := range raw {
		if m, ok := c.(map[string]any); ok && isRunHeader(m) {
			continue
		}
		kept = append(kept, c)
	}
	nb["cells"] = kept
}

// insertRunHeader puts the header cell first.
func insertRunHeader(nb map[string]any, res *Result, opts Options, runErr error, withID bool) {
	cell := map[string]any{
		"cell_type": "markdown",
		"metadata":  map[string]any{MetadataKey: map[string]any{headerMarker: true}},
		"source":    splitLines(runHeader(res, opts, runErr)),
	}
	if withID {
		cell["id"] = "gonnsight-run-header"
	}
	raw, _ := nb["cells"].([]any)
	nb["cells"] = append([]any{cell}, raw...)
}

// mdCode quotes s as inline markdown code.
func mdCode(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

// mdCell escapes a table cell's pipes.
func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// firstLine is a cell's first line of code (skipping blank lines, comments and GoNB's "%%"),
// shortened; the first comment when the cell has nothing else.
func firstLine(src string) string {
	comment := ""
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "%%" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "//") {
			if comment == "" && l != "%%" {
				comment = l
			}
			continue
		}
		if r := []rune(l); len(r) > 60 {
			l = string(r[:59]) + "…"
		}
		return l
	}
	return comment
}

// runHeader writes the header's markdown.
func runHeader(res *Result, opts Options, runErr error) string {
	var b strings.Builder
	b.WriteString(headerComment + "\n")
	version := opts.Version
	if version == "" {
		version = "(unknown version)"
	}
	facts := []string{"gonnsight " + mdCode(version), "kernel " + mdCode(res.KernelName)}
	if v, ok := opts.ExtraMetadata["backend"].(string); ok && v != "" {
		facts = append(facts, "backend "+mdCode(v))
	}
	if v, ok := opts.ExtraMetadata["model"].(string); ok && v != "" {
		facts = append(facts, "model "+mdCode(v))
	}
	facts = append(facts, res.Start.UTC().Format("2006-01-02 15:04:05 MST"),
		fmt.Sprintf("%.1f s", res.End.Sub(res.Start).Seconds()))
	fmt.Fprintf(&b, "**Run log** (`gonnsight run`): %s\n", strings.Join(facts, " · "))
	if len(opts.Params) > 0 {
		keys := make([]string, 0, len(opts.Params))
		for k := range opts.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ps []string
		for _, k := range keys {
			ps = append(ps, mdCode(k+"="+opts.Params[k]))
		}
		fmt.Fprintf(&b, "\nParameters: %s\n", strings.Join(ps, ", "))
	}
	if runErr != nil {
		var ce *CellError
		msg := runErr.Error()
		if errors.As(runErr, &ce) {
			msg = strings.SplitN(ce.Error(), "\n", 2)[0]
		}
		fmt.Fprintf(&b, "\n**The run stopped:** %s\n", mdCell(msg))
		if ce != nil && strings.TrimSpace(ce.Output) != "" {
			fence := "```"
			for strings.Contains(ce.Output, fence) {
				fence += "`"
			}
			fmt.Fprintf(&b, "\n%s\n%s\n%s\n", fence, strings.TrimSpace(ce.Output), fence)
		}
	}
	b.WriteString("\n| cell | status | seconds | code |\n| ---: | --- | ---: | --- |\n")
	for _, c := range res.Cells {
		label := fmt.Sprintf("#%d", c.Number)
		if c.ExecutionCount > 0 {
			label = fmt.Sprintf("[%d]", c.ExecutionCount)
		}
		status := c.Status
		if c.Status != "ok" {
			status = "**" + c.Status + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %s |\n", label, status, c.Duration.Seconds(), mdCell(mdCode(firstLine(c.Source))))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// completeLanguageInfo fills the fields a kernel leaves empty (GoNB sends empty
// pygments_lexer and codemirror_mode) with the language's name, so that nbconvert, GitHub and
// Jupyter highlight the code, and drops the other empty strings.
func completeLanguageInfo(li map[string]any, language string) map[string]any {
	out := make(map[string]any, len(li))
	for k, v := range li {
		if s, ok := v.(string); ok && s == "" {
			continue
		}
		out[k] = v
	}
	name, _ := out["name"].(string)
	if name == "" {
		name = strings.ToLower(language)
	}
	if name == "" {
		return out
	}
	out["name"] = name
	for _, k := range []string{"pygments_lexer", "codemirror_mode"} {
		if _, ok := out[k]; !ok {
			out[k] = name
		}
	}
	return out
}
