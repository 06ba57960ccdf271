package runner

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ParametersTag is the cell tag (as in papermill) that marks the cell whose assignments
// Options.Params replaces.
const ParametersTag = "parameters"

var (
	// var NAME [TYPE] = VALUE   |   const NAME [TYPE] = VALUE
	reDecl = regexp.MustCompile(`^(\s*(?:var|const)\s+)([A-Za-z_][A-Za-z0-9_]*)(\s+[^=]*?)?(\s*=\s*)(.*)$`)
	// NAME := VALUE
	reShort = regexp.MustCompile(`^(\s*)([A-Za-z_][A-Za-z0-9_]*)()(\s*:=\s*)(.*)$`)
	// NAME [TYPE] = VALUE, inside a var ( ... ) or const ( ... ) block
	reBlockSpec  = regexp.MustCompile(`^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s+[^=]*?)?(\s*=\s*)(.*)$`)
	reBlockOpen  = regexp.MustCompile(`^\s*(?:var|const)\s*\(\s*(//.*)?$`)
	reBlockClose = regexp.MustCompile(`^\s*\)`)
	// Python: NAME [: TYPE] = VALUE at the top level
	rePython = regexp.MustCompile(`^()([A-Za-z_][A-Za-z0-9_]*)(\s*:\s*[^=]*?)?(\s*=\s*)(.*)$`)
)

// paramLine is one assignment found in a parameters cell.
type paramLine struct {
	line           int
	prefix, name   string
	typ, assign    string
	value, comment string
}

// findParams returns the single-name assignments of a parameters cell in the given language
// ("go", or "python" for testing against ipykernel).
func findParams(src, lang string) []paramLine {
	if lang == "python" {
		return findPythonParams(src)
	}
	var out []paramLine
	inBlock := false
	for i, line := range strings.Split(src, "\n") {
		var m []string
		switch {
		case inBlock && reBlockClose.MatchString(line):
			inBlock = false
			continue
		case inBlock:
			m = reBlockSpec.FindStringSubmatch(line)
		case reBlockOpen.MatchString(line):
			inBlock = true
			continue
		default:
			if m = reDecl.FindStringSubmatch(line); m == nil {
				m = reShort.FindStringSubmatch(line)
			}
		}
		if m == nil {
			continue
		}
		value, comment := splitComment(m[5], "//")
		if strings.TrimSpace(value) == "" {
			continue
		}
		out = append(out, paramLine{line: i, prefix: m[1], name: m[2], typ: m[3], assign: m[4], value: value, comment: comment})
	}
	return out
}

func findPythonParams(src string) []paramLine {
	var out []paramLine
	for i, line := range strings.Split(src, "\n") {
		m := rePython.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		value, comment := splitComment(m[5], "#")
		if strings.TrimSpace(value) == "" {
			continue
		}
		out = append(out, paramLine{line: i, prefix: m[1], name: m[2], typ: m[3], assign: m[4], value: value, comment: comment})
	}
	return out
}

// splitComment splits an expression from a trailing comment (starting with marker) outside
// string and rune literals.
func splitComment(s, marker string) (value, comment string) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '`' || c == '\'':
			quote = c
		case strings.HasPrefix(s[i:], marker):
			v := strings.TrimRight(s[:i], " \t")
			return v, s[len(v):]
		}
	}
	return strings.TrimRight(s, " \t"), s[len(strings.TrimRight(s, " \t")):]
}

// literal renders a parameter value: numbers and bools as they are, anything else as a quoted
// string; when the current value is a string literal (or the declared type is string), always
// quoted. A parameter the notebook sets to a number or a bool (or declares numeric or bool)
// must get one: anything else is an error, not a string the cell would then misuse.
func literal(value string, old paramLine, lang string) (string, error) {
	oldV := strings.TrimSpace(old.value)
	typ := strings.Trim(strings.TrimSpace(old.typ), ": ")
	isString := strings.HasPrefix(oldV, `"`) || strings.HasPrefix(oldV, "`") || strings.HasPrefix(oldV, "'") ||
		typ == "string" || typ == "str"
	if isString {
		return strconv.Quote(value), nil
	}
	isBool := func(v string) bool {
		switch v {
		case "true", "false":
			return true
		case "True", "False":
			return lang == "python"
		}
		return false
	}
	if lang == "python" {
		switch strings.ToLower(value) {
		case "true":
			return "True", nil
		case "false":
			return "False", nil
		}
	} else if value == "true" || value == "false" {
		return value, nil
	}
	if isNumber(value) {
		return value, nil
	}
	switch {
	case isBool(oldV) || typ == "bool":
		return "", fmt.Errorf("parameter %s: %q is not true or false (the notebook sets %s = %s)", old.name, value, old.name, oldV)
	case isNumber(oldV) || strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint") || strings.HasPrefix(typ, "float"):
		what := oldV
		if typ != "" {
			what = typ + " " + oldV
		}
		return "", fmt.Errorf("parameter %s: %q is not a finite number (the notebook sets %s = %s)", old.name, value, old.name, strings.TrimSpace(what))
	}
	return strconv.Quote(value), nil
}

// isNumber reports whether v is an integer or finite float literal of Go and Python.
func isNumber(v string) bool {
	if _, err := strconv.ParseInt(v, 0, 64); err == nil {
		return true
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "xXpP_") {
		return !math.IsNaN(f) && !math.IsInf(f, 0) && !strings.ContainsAny(strings.ToLower(v), "in")
	}
	return false
}

// replaceParams returns src with the named assignments replaced by the given values.
func replaceParams(src string, params map[string]string, lang string) (string, error) {
	found := findParams(src, lang)
	byName := map[string][]paramLine{}
	var names []string
	for _, p := range found {
		if _, dup := byName[p.name]; !dup {
			names = append(names, p.name)
		}
		byName[p.name] = append(byName[p.name], p)
	}
	var unknown []string
	for name := range params {
		if _, ok := byName[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		sort.Strings(names)
		return "", fmt.Errorf("unknown parameter(s) %s; the %q cell defines: %s",
			strings.Join(unknown, ", "), ParametersTag, orNone(names))
	}
	lines := strings.Split(src, "\n")
	for name, value := range params {
		for _, p := range byName[name] {
			lit, err := literal(value, p, lang)
			if err != nil {
				return "", err
			}
			lines[p.line] = p.prefix + p.name + p.typ + p.assign + lit + p.comment
		}
	}
	return strings.Join(lines, "\n"), nil
}

// applyParams replaces the assignments of the cell tagged "parameters" in nb.
func applyParams(nb map[string]any, params map[string]string, lang string) error {
	if len(params) == 0 {
		return nil
	}
	for _, cell := range notebookCells(nb) {
		if cell == nil || cell["cell_type"] != "code" {
			continue
		}
		for _, t := range cellTags(cell) {
			if t == ParametersTag {
				src, err := replaceParams(cellSource(cell), params, lang)
				if err != nil {
					return err
				}
				setCellSource(cell, src)
				return nil
			}
		}
	}
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Errorf("parameters %s given, but the notebook has no code cell tagged %q",
		strings.Join(names, ", "), ParametersTag)
}

// NotebookParams returns the values assigned in the notebook's cell tagged "parameters", by
// name, with string literals unquoted: what the notebook runs with when no Options.Params
// override them. A notebook without such a cell has none.
func NotebookParams(path string) (map[string]string, error) {
	nb, err := loadNotebook(path)
	if err != nil {
		return nil, err
	}
	lang := "go"
	if meta, ok := nb["metadata"].(map[string]any); ok {
		if ks, ok := meta["kernelspec"].(map[string]any); ok {
			if l, ok := ks["language"].(string); ok && l != "" {
				lang = strings.ToLower(l)
			}
		}
	}
	out := map[string]string{}
	for _, cell := range notebookCells(nb) {
		if cell == nil || cell["cell_type"] != "code" || !slices.Contains(cellTags(cell), ParametersTag) {
			continue
		}
		for _, p := range findParams(cellSource(cell), lang) {
			v := strings.TrimSpace(p.value)
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			} else if lang == "python" && len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
				v = v[1 : len(v)-1]
			}
			out[p.name] = v
		}
		break
	}
	return out, nil
}
