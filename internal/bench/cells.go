package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gonnsight/gonnsight/internal/kernel"
)

// WCells runs real notebook cells through the kernel (GoNB, `gonnsight run`) on the 500 MB
// model: empty cells and trace cells alternating, with the kernel's model host and without
// it. It needs the kernel's tools (`gonnsight kernel install`) and this binary's `run`.
const WCells = "cells"

// CellsReport holds the per-cell times `gonnsight run` recorded.
type CellsReport struct {
	Backend                        string
	Model                          string // the random GPT-2's size
	EmptyHost, TraceHost           Stats
	EmptyInProcess, TraceInProcess Stats
	Pairs                          int
}

// cellsNotebook writes a notebook that declares the model, then alternates n empty cells and
// n cells that trace a 1×8 prompt (every block saved, one module set, as Traced does).
func cellsNotebook(path, dir string, n int) error {
	code := func(src string) map[string]any {
		return map[string]any{"cell_type": "code", "metadata": map[string]any{}, "source": src, "outputs": []any{}, "execution_count": nil}
	}
	cells := []any{
		code("import (\n\t\"fmt\"\n\t\"os\"\n\n\t\"github.com/gonnsight/gonnsight/nnsight\"\n\t\"github.com/gonnsight/gonnsight/ops\"\n)"),
		code(fmt.Sprintf("var model = nnsight.LanguageModel(%q)", dir)),
	}
	for i := 0; i < n; i++ {
		cells = append(cells, code("%%\nfmt.Println(\"empty cell\")"),
			code(`%%
res, err := model.Trace([]int{464, 412, 733, 318, 287, 262, 1748, 286}, func(t *nnsight.Tracer) {
	for i := 0; i < 12; i++ {
		t.Module(fmt.Sprintf("transformer.h.%d", i)).Output().Save(fmt.Sprintf("h%d", i))
	}
	t.Module("transformer.h.5.mlp").Output().Set(func(x *ops.Node) *ops.Node { return ops.MulScalar(x, 2) })
})
if err != nil {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
fmt.Println(len(res.Names()), "values;", model.Backend())`))
	}
	nb := map[string]any{"cells": cells, "metadata": map[string]any{"kernelspec": map[string]any{"name": "gonnsight-bench", "display_name": "Go (gonnsight bench)", "language": "go"}},
		"nbformat": 4, "nbformat_minor": 5}
	b, err := json.MarshalIndent(nb, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// runCells measures notebook cells with and without the host, one notebook run each per rep.
func runCells(cfg Config, b string) (*CellsReport, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }
	home := kernel.DefaultHome()
	for _, tool := range []kernel.Tool{kernel.GoNBTool, kernel.GoImportsTool} {
		if !kernel.ToolInstalled(home, tool) {
			return nil, fmt.Errorf("the kernel's %s is not installed in %s: run `gonnsight kernel install` first", tool.Name, kernel.ToolsBinDir(home))
		}
	}
	root, err := kernel.FindModuleRoot(".")
	if err != nil {
		return nil, fmt.Errorf("run from gonnsight's source tree (the kernel's cells build against it): %w", err)
	}
	dir, err := ensureModelDirOf(cfg.HostModel, cfg.Log)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "gonnsight-bench-cells-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	prefix := filepath.Join(tmp, "jupyter")
	if _, err := kernel.InstallKernelspec(kernel.KernelspecOptions{Name: "gonnsight-bench", Prefix: prefix, Binary: exe,
		ModuleRoot: root, Home: home, Env: map[string]string{"GOMLX_BACKEND": b}}); err != nil {
		return nil, err
	}
	const pairs = 4
	nbPath := filepath.Join(tmp, "cells.ipynb")
	if err := cellsNotebook(nbPath, dir, pairs); err != nil {
		return nil, err
	}
	rep := &CellsReport{Backend: b, Pairs: pairs, Model: cmp.Or(cfg.HostModel, "small")}
	runs := max(1, cfg.Reps/2)
	for r := 0; r < runs; r++ {
		for _, withHost := range []bool{true, false} {
			logf("bench: notebook cells through the kernel, model host %v (run %d of %d)", withHost, r+1, runs)
			out := filepath.Join(tmp, fmt.Sprintf("out-%d-%v.ipynb", r, withHost))
			cmd := exec.Command(exe, "run", nbPath, "--kernel", "gonnsight-bench", "--out", out, "--timeout", "20m")
			cmd.Env = append(os.Environ(), "JUPYTER_PATH="+filepath.Join(prefix, "share", "jupyter"), kernel.HomeEnv+"="+home,
				"GOEXPERIMENT=simd", "HF_HUB_OFFLINE=1", EnvChild+"=", EnvHostChild+"=")
			if !withHost {
				cmd.Env = append(cmd.Env, kernel.HostEnv+"=0")
			}
			var errb strings.Builder
			cmd.Stderr = &errb
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("gonnsight run (host %v): %v: %s", withHost, err, errb.String())
			}
			secs, err := cellSeconds(out)
			if err != nil {
				return nil, err
			}
			// Cells: import, declaration, then (empty, trace) pairs; the first pair warms up.
			for i := 1; i < pairs; i++ {
				e, tr := secs[2+2*i], secs[3+2*i]
				if withHost {
					rep.EmptyHost.Add(e)
					rep.TraceHost.Add(tr)
				} else {
					rep.EmptyInProcess.Add(e)
					rep.TraceInProcess.Add(tr)
				}
			}
		}
	}
	return rep, nil
}

func cellSeconds(path string) ([]time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var nb struct {
		Metadata struct {
			Gonnsight struct {
				Cells []struct {
					Seconds float64 `json:"duration_seconds"`
					Status  string  `json:"status"`
				} `json:"cells"`
			} `json:"gonnsight"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &nb); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i, c := range nb.Metadata.Gonnsight.Cells {
		if c.Status != "ok" {
			return nil, fmt.Errorf("%s: cell %d: %s", path, i+1, c.Status)
		}
		out = append(out, time.Duration(c.Seconds*float64(time.Second)))
	}
	return out, nil
}

// Markdown renders the cell times.
func (r *CellsReport) Markdown() string {
	eh, th, ei, ti := r.EmptyHost.Median(), r.TraceHost.Median(), r.EmptyInProcess.Median(), r.TraceInProcess.Median()
	rows := [][]string{
		{"empty cell", Millis(ei), Millis(eh)},
		{"trace cell (traced 1×8 forward of the model)", Millis(ti), Millis(th)},
		{"trace cell minus empty cell", Millis(ti - ei), Millis(th - eh)},
	}
	return Markdown([]string{fmt.Sprintf("notebook cells through the kernel, %s, GPT-2 %s (median of %d, ms)", r.Backend, r.Model, len(r.EmptyHost.Samples)), "in-process", "kernel's model host"}, rows)
}

// cells is the WCells step of a run.
func (r *run) cells() error {
	cr, err := runCells(r.cfg, r.cfg.Backends[0])
	if err != nil {
		return fmt.Errorf("cells: %w", err)
	}
	r.rep.Cells = cr
	return nil
}
