package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The runner is tested against Debian's python3-ipykernel through a kernelspec written to a
// temporary JUPYTER_PATH; no GoNB is needed.
const (
	systemPython = "/usr/bin/python3"
	testKernel   = "gonnsight-test-python"
)

var kernelSkip string // why the ipykernel tests are skipped, "" when they run

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runner-test-jupyter-")
	if err != nil {
		panic(err)
	}
	if out, err := exec.Command(systemPython, "-c", "import ipykernel_launcher").CombinedOutput(); err != nil {
		kernelSkip = fmt.Sprintf("%s cannot import ipykernel_launcher (install Debian's python3-ipykernel): %v %s", systemPython, err, out)
	} else {
		specDir := filepath.Join(dir, "kernels", testKernel)
		_ = os.MkdirAll(specDir, 0o755)
		spec := map[string]any{
			"argv":         []string{systemPython, "-m", "ipykernel_launcher", "-f", "{connection_file}"},
			"display_name": "Python (runner test)", "language": "python",
		}
		data, _ := json.Marshal(spec)
		_ = os.WriteFile(filepath.Join(specDir, "kernel.json"), data, 0o644)
	}
	os.Setenv("JUPYTER_PATH", dir)
	os.Setenv("IPYTHONDIR", filepath.Join(dir, "ipython"))
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func needKernel(t *testing.T) {
	t.Helper()
	if kernelSkip != "" {
		t.Skip(kernelSkip)
	}
}

// writeNotebook writes an nbformat 4 notebook; a source starting with "#md " is a markdown cell,
// "#parameters\n" tags the cell "parameters".
func writeNotebook(t *testing.T, sources ...string) string {
	t.Helper()
	var cells []any
	for i, s := range sources {
		cell := map[string]any{"cell_type": "code", "metadata": map[string]any{"custom": i}, "source": s,
			"outputs": []any{map[string]any{"output_type": "stream", "name": "stdout", "text": "stale"}}, "execution_count": 99}
		if strings.HasPrefix(s, "#md ") {
			cell = map[string]any{"cell_type": "markdown", "metadata": map[string]any{}, "source": s[4:]}
		}
		if rest, ok := strings.CutPrefix(s, "#parameters\n"); ok {
			cell["source"] = splitLines(rest)
			cell["metadata"] = map[string]any{"tags": []any{"parameters"}}
		}
		cells = append(cells, cell)
	}
	nb := map[string]any{"nbformat": 4, "nbformat_minor": 5, "cells": cells,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": testKernel, "display_name": "x", "language": "python"}, "unknown_field": "kept"}}
	data, _ := json.Marshal(nb)
	path := filepath.Join(t.TempDir(), "nb.ipynb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a bytes.Buffer safe for the runner's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func readBack(t *testing.T, path string) map[string]any {
	t.Helper()
	nb, err := loadNotebook(path)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

func outputText(cell map[string]any) string {
	var b strings.Builder
	outs, _ := cell["outputs"].([]any)
	for _, o := range outs {
		m := o.(map[string]any)
		b.WriteString(multiline(m["text"]))
		if d, ok := m["data"].(map[string]any); ok {
			b.WriteString(multiline(d["text/plain"]))
		}
		if m["output_type"] == "error" {
			fmt.Fprintf(&b, "%v: %v", m["ename"], m["evalue"])
		}
	}
	return b.String()
}

var errorNotebook = []string{
	"#md # Title",
	"print('hello')\nprint('world')",
	"1 + 1",
	"x = 1/0",
	"print('after')",
	"",
}

func TestRunNotebookStopsAtFirstError(t *testing.T) {
	needKernel(t)
	t.Parallel()
	path := writeNotebook(t, errorNotebook...)
	log := &syncBuffer{}
	res, err := RunNotebook(path, Options{Log: log, Version: "v-test", ExtraMetadata: map[string]any{"backend": "go"}})
	var ce *CellError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *CellError, got %v\nlog:\n%s", err, log)
	}
	if ce.Cell != 4 || ce.Reason != ReasonError || ce.Ename != "ZeroDivisionError" || !strings.Contains(err.Error(), "cell 4: ZeroDivisionError") {
		t.Fatalf("wrong error: %+v (%v)", ce, err)
	}
	if res == nil || res.OutputPath != DefaultOutputPath(path) || len(res.Cells) != 3 {
		t.Fatalf("bad result %+v", res)
	}
	nb := readBack(t, res.OutputPath)
	validateWithNbformat(t, res.OutputPath)
	cells := notebookCells(nb)
	if got := outputText(cells[1]); got != "hello\nworld\n" {
		t.Errorf("cell 2 output %q", got)
	}
	if outs := cells[1]["outputs"].([]any); len(outs) != 1 {
		t.Errorf("consecutive stdout writes should be one output, got %d", len(outs))
	}
	if got := outputText(cells[2]); got != "2" {
		t.Errorf("cell 3 output %q", got)
	}
	if got := outputText(cells[3]); !strings.Contains(got, "ZeroDivisionError") {
		t.Errorf("cell 4 output %q", got)
	}
	if cells[4]["execution_count"] != nil || len(cells[4]["outputs"].([]any)) != 0 {
		t.Errorf("cell 5 should not have run and its stale outputs should be cleared: %v", cells[4])
	}
	if ec := cells[1]["execution_count"]; fmt.Sprint(ec) != "1" {
		t.Errorf("cell 2 execution_count %v", ec)
	}
	if md := cells[2]["metadata"].(map[string]any); fmt.Sprint(md["custom"]) != "2" {
		t.Errorf("cell metadata lost: %v", md)
	}
	meta := nb["metadata"].(map[string]any)
	if meta["unknown_field"] != "kept" {
		t.Errorf("unknown metadata lost: %v", meta)
	}
	g := meta[MetadataKey].(map[string]any)
	if g["version"] != "v-test" || g["backend"] != "go" || len(g["cells"].([]any)) != 3 || !strings.Contains(g["error"].(string), "cell 4") {
		t.Errorf("metadata.gonnsight = %v", g)
	}
	if _, ok := meta["language_info"].(map[string]any); !ok {
		t.Errorf("no language_info recorded: %v", meta)
	}
}

func TestRunNotebookAllowErrors(t *testing.T) {
	needKernel(t)
	t.Parallel()
	path := writeNotebook(t, errorNotebook...)
	out := filepath.Join(t.TempDir(), "out.ipynb")
	res, err := RunNotebook(path, Options{AllowErrors: true, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 4 || res.Cells[2].Status != "error" || res.Cells[3].Status != "ok" {
		t.Fatalf("cells: %+v", res.Cells)
	}
	cells := notebookCells(readBack(t, out))
	if got := outputText(cells[4]); got != "after\n" {
		t.Errorf("cell 5 output %q", got)
	}
}

func TestRunNotebookParameters(t *testing.T) {
	needKernel(t)
	t.Parallel()
	path := writeNotebook(t, "#parameters\nmodel = 'x'  # the model\nn = 3\nflag = False\n", "print(repr(model), n, flag)")
	res, err := RunNotebook(path, Options{Params: map[string]string{"model": "gpt2", "n": "5", "flag": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	nb := readBack(t, res.OutputPath)
	cells := notebookCells(nb)
	if got := outputText(cells[1]); got != "'gpt2' 5 True\n" {
		t.Errorf("output %q", got)
	}
	if src := cellSource(cells[0]); !strings.Contains(src, `model = "gpt2"  # the model`) {
		t.Errorf("parameters cell: %q", src)
	}
	g := nb["metadata"].(map[string]any)[MetadataKey].(map[string]any)
	if p := g["parameters"].(map[string]any); p["model"] != "gpt2" {
		t.Errorf("parameters not recorded: %v", g)
	}

	_, err = RunNotebook(path, Options{Params: map[string]string{"modle": "gpt2"}})
	if err == nil || !strings.Contains(err.Error(), "modle") || !strings.Contains(err.Error(), "flag, model, n") {
		t.Errorf("unknown parameter error should list the cell's parameters, got %v", err)
	}
}

func TestRunNotebookTimeout(t *testing.T) {
	needKernel(t)
	t.Parallel()
	path := writeNotebook(t, "print('start')", "import time; time.sleep(60)", "print('never')")
	start := time.Now()
	res, err := RunNotebook(path, Options{Timeout: 2 * time.Second})
	var ce *CellError
	if !errors.As(err, &ce) || ce.Reason != ReasonTimeout || ce.Cell != 2 || !strings.Contains(err.Error(), "cell 2: timed out after 2s") {
		t.Fatalf("want a timeout at cell 2, got %v", err)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("timeout took %v", el)
	}
	if len(res.Cells) != 2 || res.Cells[1].Status != "timeout" {
		t.Errorf("cells %+v", res.Cells)
	}
}

func TestRunNotebookKernelDies(t *testing.T) {
	needKernel(t)
	t.Parallel()
	path := writeNotebook(t, "print('alive', flush=True)", "import os; os._exit(1)", "print('never')")
	res, err := RunNotebook(path, Options{})
	var ce *CellError
	if !errors.As(err, &ce) || ce.Reason != ReasonKernelDied || ce.Cell != 2 {
		t.Fatalf("want the kernel dying at cell 2, got %v", err)
	}
	if !strings.Contains(err.Error(), "cell 2") || !strings.Contains(err.Error(), "died") {
		t.Errorf("error should name the cell and the death: %v", err)
	}
	if len(res.Cells) != 2 || res.Cells[1].Status != "dead" {
		t.Errorf("cells %+v", res.Cells)
	}
	if _, statErr := os.Stat(res.OutputPath); statErr != nil {
		t.Errorf("partial notebook not written: %v", statErr)
	}
}

func TestRunNotebookUnknownKernel(t *testing.T) {
	path := writeNotebook(t, "1")
	_, err := RunNotebook(path, Options{KernelName: "no-such-kernel"})
	if err == nil || !strings.Contains(err.Error(), `"no-such-kernel"`) || !strings.Contains(err.Error(), "available:") {
		t.Fatalf("got %v", err)
	}
}

// validateWithNbformat checks the written notebook against the nbformat schema when Python's
// nbformat is available.
func validateWithNbformat(t *testing.T, path string) {
	t.Helper()
	if err := exec.Command(systemPython, "-c", "import nbformat").Run(); err != nil {
		t.Log("nbformat not importable: schema validation skipped")
		return
	}
	out, err := exec.Command(systemPython, "-W", "error", "-c",
		"import sys, nbformat; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))", path).CombinedOutput()
	if err != nil {
		t.Errorf("nbformat rejects the executed notebook: %v\n%s", err, out)
	}
}

func TestRunNotebookKernelFailsToStart(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	dir := t.TempDir()
	specDir := filepath.Join(dir, "kernels", "broken")
	_ = os.MkdirAll(specDir, 0o755)
	_ = os.WriteFile(filepath.Join(specDir, "kernel.json"),
		[]byte(`{"argv": ["/bin/sh", "-c", "echo boom: cannot start >&2; exit 4", "{connection_file}"], "display_name": "broken", "language": "go"}`), 0o644)
	t.Setenv("JUPYTER_PATH", dir+string(os.PathListSeparator)+os.Getenv("JUPYTER_PATH"))
	path := writeNotebook(t, "1")
	_, err := RunNotebook(path, Options{KernelName: "broken", StartupTimeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "died before it was ready") && !strings.Contains(err.Error(), "died while starting") ||
		!strings.Contains(err.Error(), "boom: cannot start") || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("want the kernel's death with its stderr, got %v", err)
	}
}
