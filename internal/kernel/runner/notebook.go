package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gonnsight/gonnsight/internal/fsx"
)

// loadNotebook reads an nbformat 4 notebook, keeping every field (numbers as json.Number) so
// that saving it back preserves what the runner does not touch.
func loadNotebook(path string) (map[string]any, error) {
	data, err := fsx.ReadRegular(path, maxNotebookBytes)
	if err != nil {
		return nil, fmt.Errorf("reading notebook: %w", err)
	}
	return parseNotebook(path, data)
}

// maxNotebookBytes bounds a notebook file (outputs with images make them large, not this large).
const maxNotebookBytes = 1 << 30

// parseNotebook parses an nbformat 4 notebook; path names it in errors.
func parseNotebook(path string, data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var nb map[string]any
	if err := dec.Decode(&nb); err != nil {
		return nil, fmt.Errorf("parsing notebook %s: %w", path, err)
	}
	if v, ok := nb["nbformat"].(json.Number); !ok || v.String() != "4" {
		return nil, fmt.Errorf("notebook %s: nbformat is %v, only nbformat 4 is supported", path, nb["nbformat"])
	}
	if _, ok := nb["cells"].([]any); !ok {
		return nil, fmt.Errorf("notebook %s has no cells list", path)
	}
	if _, ok := nb["metadata"].(map[string]any); !ok {
		nb["metadata"] = map[string]any{}
	}
	return nb, nil
}

// notebookCells returns the notebook's cells as maps (cells that are not objects are skipped as nil).
func notebookCells(nb map[string]any) []map[string]any {
	raw, _ := nb["cells"].([]any)
	cells := make([]map[string]any, len(raw))
	for i, c := range raw {
		cells[i], _ = c.(map[string]any)
	}
	return cells
}

// multiline returns a notebook multiline string (a string or a list of strings) as one string.
func multiline(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []any:
		var b strings.Builder
		for _, line := range s {
			if str, ok := line.(string); ok {
				b.WriteString(str)
			}
		}
		return b.String()
	}
	return ""
}

// splitLines splits s the way nbformat stores multiline strings: lines keeping their "\n".
func splitLines(s string) []any {
	lines := []any{}
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

func cellSource(cell map[string]any) string { return multiline(cell["source"]) }

// setCellSource replaces the cell's source, keeping its representation (string or list of lines).
func setCellSource(cell map[string]any, src string) {
	if _, isList := cell["source"].([]any); isList {
		cell["source"] = splitLines(src)
	} else {
		cell["source"] = src
	}
}

func cellTags(cell map[string]any) []string {
	md, _ := cell["metadata"].(map[string]any)
	raw, _ := md["tags"].([]any)
	var tags []string
	for _, t := range raw {
		if s, ok := t.(string); ok {
			tags = append(tags, s)
		}
	}
	return tags
}

// isJSONMime reports whether a mime bundle entry is JSON data (kept as an object, not split into lines).
func isJSONMime(mime string) bool {
	return mime == "application/json" || strings.HasSuffix(mime, "+json")
}

// nbOutput returns an output as nbformat stores it: text fields split into lines.
func nbOutput(out map[string]any) map[string]any {
	c := make(map[string]any, len(out))
	for k, v := range out {
		c[k] = v
	}
	if s, ok := c["text"].(string); ok {
		c["text"] = splitLines(s)
	}
	if data, ok := c["data"].(map[string]any); ok {
		d := make(map[string]any, len(data))
		for mime, v := range data {
			if s, ok := v.(string); ok && !isJSONMime(mime) && (strings.HasPrefix(mime, "text/") ||
				mime == "application/javascript" || mime == "image/svg+xml") {
				d[mime] = splitLines(s)
			} else {
				d[mime] = v
			}
		}
		c["data"] = d
	}
	return c
}

// saveNotebook writes nb to path atomically, formatted like nbformat (sorted keys, indent 1).
func saveNotebook(path string, nb map[string]any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(nb); err != nil {
		return fmt.Errorf("encoding notebook %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing notebook: %w", err)
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing notebook %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing notebook %s: %w", path, err)
	}
	_ = os.Chmod(tmp.Name(), 0o644)
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing notebook %s: %w", path, err)
	}
	return nil
}
