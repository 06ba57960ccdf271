//go:build unix

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Ctrl-C on `gonnsight run` writes the notebook with what ran and says so; it does not
// report success.
func TestRunInterrupted(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import ipykernel_launcher").Run(); err != nil {
		t.Skip("needs Debian's python3-ipykernel")
	}
	jp := t.TempDir()
	spec := filepath.Join(jp, "kernels", "py-sig")
	_ = os.MkdirAll(spec, 0o755)
	data, _ := json.Marshal(map[string]any{"argv": []string{py, "-m", "ipykernel_launcher", "-f", "{connection_file}"},
		"display_name": "py", "language": "python"})
	_ = os.WriteFile(filepath.Join(spec, "kernel.json"), data, 0o644)
	t.Setenv("JUPYTER_PATH", jp)
	t.Setenv("IPYTHONDIR", filepath.Join(jp, "ipython"))
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	cell := func(src string) map[string]any {
		return map[string]any{"cell_type": "code", "metadata": map[string]any{}, "source": src, "outputs": []any{}, "execution_count": nil}
	}
	nb, _ := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": map[string]any{},
		"cells": []any{cell("print('one')"), cell("import time\nopen('" + started + "', 'w').write('x')\ntime.sleep(120)"), cell("print('three')")}})
	path := filepath.Join(dir, "nb.ipynb")
	_ = os.WriteFile(path, nb, 0o644)
	out := filepath.Join(dir, "out.ipynb")
	go func() {
		for range 1200 {
			if _, err := os.Stat(started); err == nil {
				time.Sleep(200 * time.Millisecond)
				_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	code, stdoutText, errOut := runCLI(t, "run", path, "--kernel", "py-sig", "--out", out)
	if code == 0 || strings.Contains(stdoutText, "executed notebook") {
		t.Errorf("an interrupted run reported success: exit %d, stdout %q", code, stdoutText)
	}
	if !strings.Contains(stdoutText, out) || !strings.Contains(errOut, "interrupt") {
		t.Errorf("stdout %q, stderr %q: want the partial notebook named and the interruption said", stdoutText, errOut)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no notebook written: %v", err)
	}
	if !strings.Contains(string(written), "one") || strings.Contains(string(written), `"three\n"`) {
		t.Errorf("the written notebook should hold cell 1's output and nothing of cell 3:\n%.2000s", written)
	}
}
