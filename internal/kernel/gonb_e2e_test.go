package kernel

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/kernel/runner"
)

// TestGoNBNotebookEndToEnd runs a Go notebook through the whole chain: runner → kernelspec
// written by InstallKernelspec → launcher (this test binary acting as `gonnsight kernel run`)
// → the pinned GoNB built by InstallTools.
func TestGoNBNotebookEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles notebook cells with GoNB (the first one takes ~30 s on a cold cache): skipped in -short mode")
	}
	tools := DefaultHome()
	for _, tool := range []Tool{GoNBTool, GoImportsTool} {
		if !ToolInstalled(tools, tool) {
			t.Skipf("%s %s is not installed in %s: run `gonnsight kernel install` (kernel.InstallTools) first", tool.Name, tool.Version, ToolsBinDir(tools))
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	jupyter := t.TempDir()
	t.Setenv("JUPYTER_PATH", filepath.Join(jupyter, "share", "jupyter"))
	if _, err := InstallKernelspec(KernelspecOptions{Name: "gonnsight-e2e", Prefix: jupyter, Binary: self,
		ModuleRoot: moduleRoot(t), Env: map[string]string{launcherEnv: "1"}}); err != nil {
		t.Fatal(err)
	}

	cells := []any{
		codeCell(nil, "var greeting = \"hi\" // overridden by -p\n", "parameters"),
		codeCell(nil, "func must(err error) { if err != nil { panic(err) } }\n"),
		codeCell(nil, "import \"os\"\n\n%%\nfmt.Println(\"flags:\", os.Getenv(\"GOFLAGS\"))\n"+
			"must(os.WriteFile(os.Getenv(\"GONNSIGHT_SESSION_DIR\")+\"/x\", []byte(greeting), 0o644))\n"),
		codeCell(nil, "%%\ndata, err := os.ReadFile(os.Getenv(\"GONNSIGHT_SESSION_DIR\") + \"/x\")\nmust(err)\nfmt.Println(\"stored:\", string(data))\n"),
		codeCell(nil, "%%\nfmt.Println(\"warm\")\n"),
		codeCell(nil, "%%\nvar x int = \"not an int\"\n_ = x\n"),
	}
	nb := map[string]any{"nbformat": 4, "nbformat_minor": 5, "cells": cells,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "gonnsight-e2e", "display_name": "Go", "language": "go"}}}
	data, _ := json.Marshal(nb)
	path := filepath.Join(t.TempDir(), "e2e.ipynb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var log syncWriter
	res, err := runner.RunNotebook(path, runner.Options{
		Timeout: 5 * time.Minute, StartupTimeout: time.Minute, Log: &log, Version: "e2e",
		Params: map[string]string{"greeting": "hello from -p"},
	})
	for _, c := range res.Cells {
		t.Logf("cell %d: %s in %v", c.Number, c.Status, c.Duration.Round(time.Millisecond))
	}
	if err == nil || !strings.Contains(err.Error(), "cell 6") {
		t.Fatalf("the compile error in cell 6 should stop the run, got %v\nkernel log:\n%s", err, log.String())
	}
	text := func(i int) string {
		var b strings.Builder
		for _, o := range res.Cells[i].Outputs {
			if s, ok := o["text"].(string); ok {
				b.WriteString(s)
			}
		}
		return b.String()
	}
	if len(res.Cells) != 6 {
		t.Fatalf("%d cells ran\nkernel log:\n%s", len(res.Cells), log.String())
	}
	if out := text(2); !strings.Contains(out, "-tags=noxla") {
		t.Errorf("cells should build with -tags=noxla: %q", out)
	}
	if out := text(3); !strings.Contains(out, "stored: hello from -p") {
		t.Errorf("the session store or the parameter did not reach cell 4: %q", out)
	}

	// A cell over the timeout is interrupted through GoNB's interrupt_request handling.
	nb["cells"] = []any{codeCell(nil, "%%\nfmt.Println(\"sleeping\")\ntime.Sleep(time.Minute)\n")}
	data, _ = json.Marshal(nb)
	_ = os.WriteFile(path, data, 0o644)
	start := time.Now()
	_, err = runner.RunNotebook(path, runner.Options{Timeout: 3 * time.Second, StartupTimeout: time.Minute, Log: &log})
	var ce *runner.CellError
	if !errors.As(err, &ce) || ce.Reason != runner.ReasonTimeout || ce.Cell != 1 {
		t.Errorf("want a timeout in cell 1, got %v", err)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("the timed-out run took %v", el)
	}
}

func codeCell(md map[string]any, src string, tags ...string) map[string]any {
	if md == nil {
		md = map[string]any{}
	}
	if len(tags) > 0 {
		var l []any
		for _, t := range tags {
			l = append(l, t)
		}
		md["tags"] = l
	}
	return map[string]any{"cell_type": "code", "metadata": md, "source": src, "outputs": []any{}, "execution_count": nil}
}

type syncWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
