package runner

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzNotebook: any bytes give an error naming the notebook, or a notebook whose parameters
// can be read and replaced and that can be written back, without a panic.
func FuzzNotebook(f *testing.F) {
	f.Add([]byte(`{"nbformat":4,"nbformat_minor":5,"metadata":{"kernelspec":{"name":"gonnsight","language":"go"}},"cells":[
 {"cell_type":"code","metadata":{"tags":["parameters"]},"source":["var modelName = \"gonnsight/tiny-gpt2\" // m\n","var steps int = 3\n","var (\n\ttemp = 0.5\n)"],"outputs":[],"execution_count":null},
 {"cell_type":"markdown","metadata":{},"source":"# x"}]}`), "steps", "7")
	f.Add([]byte(`{"nbformat":4,"cells":[{"cell_type":"code","metadata":{"tags":["parameters"]},"source":"n = 3  # py"}],"metadata":{"kernelspec":{"language":"python"}}}`), "n", "abc")
	f.Add([]byte(`{"nbformat":3,"cells":[]}`), "x", "1")
	f.Add([]byte(`{"nbformat":4,"cells":[1,"a",null,{"cell_type":"code","source":[1,2]}]}`), "x", "1")
	f.Fuzz(func(t *testing.T, data []byte, name, value string) {
		nb, err := parseNotebook("nb.ipynb", data)
		if err != nil {
			if !bytes.Contains([]byte(err.Error()), []byte("nb.ipynb")) {
				t.Errorf("error does not name the notebook: %v", err)
			}
			return
		}
		for _, lang := range []string{"go", "python"} {
			_ = applyParams(nb, map[string]string{name: value}, lang)
		}
		for _, c := range notebookCells(nb) {
			if c != nil {
				_ = cellSource(c)
				_ = cellTags(c)
			}
		}
		if _, err := json.Marshal(nb); err != nil {
			t.Fatalf("a parsed notebook cannot be written back: %v", err)
		}
	})
}
