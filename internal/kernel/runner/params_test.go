package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceGoParams(t *testing.T) {
	src := strings.Join([]string{
		`var model = "openai-community/gpt2" // which model`,
		`var steps int = 10`,
		`var (`,
		`	prompt = "The Eiffel Tower"`,
		`	temp   float32 = 0.7`,
		`	greedy = false`,
		`)`,
		`%%`,
		`seed := 42`,
		`name := "a//b" // keep`,
		`fmt.Println(model)`,
	}, "\n")
	got, err := replaceParams(src, map[string]string{
		"model": "tiny", "steps": "20", "prompt": `say "hi"`, "temp": "1.5", "greedy": "true", "seed": "7", "name": "100",
	}, "go")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`var model = "tiny" // which model`,
		`var steps int = 20`,
		`var (`,
		`	prompt = "say \"hi\""`,
		`	temp   float32 = 1.5`,
		`	greedy = true`,
		`)`,
		`%%`,
		`seed := 7`,
		`name := "100" // keep`,
		`fmt.Println(model)`,
	}, "\n")
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	_, err = replaceParams(src, map[string]string{"modle": "x"}, "go")
	if err == nil || !strings.Contains(err.Error(), "modle") ||
		!strings.Contains(err.Error(), "greedy, model, name, prompt, seed, steps, temp") {
		t.Errorf("unknown parameter error should list the parameters: %v", err)
	}
}

func TestLiteral(t *testing.T) {
	for _, c := range []struct{ value, old, lang, want string }{
		{"3", "1", "go", "3"},
		{"0x10", "1", "go", "0x10"},
		{"1e-3", "1.0", "go", "1e-3"},
		{"3", `"1"`, "go", `"3"`},
		{"true", "false", "python", "True"},
		{"x", "'y'", "python", `"x"`},
	} {
		if got, err := literal(c.value, paramLine{value: c.old}, c.lang); err != nil || got != c.want {
			t.Errorf("literal(%q, old %q, %s) = %s, want %s", c.value, c.old, c.lang, got, c.want)
		}
	}
}

func TestApplyParamsWithoutParametersCell(t *testing.T) {
	nb := map[string]any{"cells": []any{map[string]any{"cell_type": "code", "source": "x := 1", "metadata": map[string]any{}}}}
	if err := applyParams(nb, map[string]string{"x": "2"}, "go"); err == nil || !strings.Contains(err.Error(), `tagged "parameters"`) {
		t.Fatalf("got %v", err)
	}
}

func TestNotebookParams(t *testing.T) {
	nb := `{"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "gonnsight", "language": "go"}},
 "cells": [
  {"cell_type": "code", "metadata": {}, "source": "var modelName = \"not the parameters cell\"", "outputs": [], "execution_count": null},
  {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["// which model\n", "var modelName = \"gonnsight/tiny-gpt2\" // default\n", "var steps = 3"], "outputs": [], "execution_count": null}
 ]}`
	path := filepath.Join(t.TempDir(), "p.ipynb")
	if err := os.WriteFile(path, []byte(nb), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := NotebookParams(path)
	if err != nil {
		t.Fatal(err)
	}
	if got["modelName"] != "gonnsight/tiny-gpt2" || got["steps"] != "3" || len(got) != 2 {
		t.Errorf("NotebookParams = %v", got)
	}
}

// A value that is not a number for a parameter the notebook sets to a number (or declares
// numeric) is an error naming both, not a string the cell then misuses.
func TestNonNumberForNumericParam(t *testing.T) {
	src := "var steps int = 10\nvar temp = 0.5\nn := 3\nvar greedy = false\nvar label = \"x\""
	for name, value := range map[string]string{"steps": "ten", "temp": "NaN", "n": "3 cells", "greedy": "yes"} {
		_, err := replaceParams(src, map[string]string{name: value}, "go")
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), value) {
			t.Errorf("%s=%s: want an error naming the parameter and the value, got %v", name, value, err)
		}
	}
	if _, err := replaceParams("n = 3", map[string]string{"n": "abc"}, "python"); err == nil || !strings.Contains(err.Error(), "abc") {
		t.Errorf("python n=abc: %v", err)
	}
	// Strings still take anything.
	if got, err := replaceParams(src, map[string]string{"label": "42"}, "go"); err != nil || !strings.Contains(got, `var label = "42"`) {
		t.Errorf("label=42: %q %v", got, err)
	}
}
