package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/golden"
)

// kernelRun is what tests/jupyter/kernel_client.py prints.
type kernelRun struct {
	Kernel            string        `json:"kernel"`
	ConnectionFile    string        `json:"connection_file"`
	Steps             []kernelStep  `json:"steps"`
	Events            []kernelEvent `json:"events"`
	Fatal             string        `json:"fatal"`
	ShutdownError     string        `json:"shutdown_error"`
	SessionDir        string        `json:"session_dir"`
	SessionDirRemoved *bool         `json:"session_dir_removed"`
}

type kernelStep struct {
	Name     string  `json:"name"`
	Code     string  `json:"code"`
	Status   string  `json:"status"`
	Stdout   string  `json:"stdout"`
	Stderr   string  `json:"stderr"`
	Elapsed  float64 `json:"elapsed"`
	Displays []struct {
		MsgType string         `json:"msg_type"`
		Data    map[string]any `json:"data"`
	} `json:"displays"`
	Errors []struct {
		Ename  string `json:"ename"`
		Evalue string `json:"evalue"`
	} `json:"errors"`
	InterruptedAfter *float64 `json:"interrupted_after"`
}

type kernelEvent struct {
	After          string  `json:"after"`
	Alive          bool    `json:"alive"`
	ConnectionFile string  `json:"connection_file"`
	Seconds        float64 `json:"seconds"`
}

func (s kernelStep) String() string {
	var d []string
	for _, x := range s.Displays {
		d = append(d, fmt.Sprintf("%s %v", x.MsgType, x.Data["text/plain"]))
	}
	return fmt.Sprintf("step %s: status %q in %.1fs\ncode:\n%s\nstdout:\n%s\nstderr:\n%s\ndisplays: %v\nerrors: %v",
		s.Name, s.Status, s.Elapsed, s.Code, s.Stdout, s.Stderr, d, s.Errors)
}

// TestKernelThroughJupyterClient drives the gonnsight kernel with Jupyter's own client
// (jupyter_client's KernelManager and BlockingKernelClient, in tests/jupyter/kernel_client.py)
// as a notebook front end does: saving, rich displays, an interrupted cell, a panicking cell,
// state across cells and across a kernel restart, and an error naming the nearest paths.
func TestKernelThroughJupyterClient(t *testing.T) {
	k := needKernel(t)
	py := jupyterPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join(golden.Root(), "tests", "jupyter", "kernel_client.py"),
		"--kernel", "gonnsight", "--cwd", t.TempDir(), "--timeout", "240")
	cmd.Env = k.environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("kernel_client.py: %v", time.Since(start).Round(100*time.Millisecond))
	var run kernelRun
	if jsonErr := json.Unmarshal(stdout.Bytes(), &run); jsonErr != nil {
		t.Fatalf("kernel_client.py: %v (%v)\nstdout:\n%s\nstderr (tail):\n%s", err, jsonErr, tail(stdout.String(), 4000), tail(stderr.String(), 6000))
	}
	if run.Fatal != "" || err != nil {
		t.Fatalf("kernel_client.py: %v\n%s\nstderr (tail):\n%s", err, run.Fatal, tail(stderr.String(), 6000))
	}
	steps := map[string]kernelStep{}
	for _, s := range run.Steps {
		steps[s.Name] = s
	}
	step := func(name string) kernelStep {
		t.Helper()
		s, ok := steps[name]
		if !ok {
			t.Fatalf("step %s did not run", name)
		}
		return s
	}
	okStep := func(name string, patterns ...string) kernelStep {
		t.Helper()
		s := step(name)
		if s.Status != "ok" || len(s.Errors) > 0 {
			t.Errorf("want status ok and no error:\n%s", s)
			return s
		}
		has(t, name, s.Stdout, patterns...)
		return s
	}
	event := func(after string) kernelEvent {
		t.Helper()
		for _, e := range run.Events {
			if e.After == after {
				return e
			}
		}
		t.Fatalf("no event after %s: %v", after, run.Events)
		return kernelEvent{}
	}
	display := func(s kernelStep) (plain, html string) {
		t.Helper()
		if len(s.Displays) != 1 {
			t.Fatalf("want one display_data:\n%s", s)
		}
		d := s.Displays[0]
		if d.MsgType != "display_data" {
			t.Errorf("%s: got %s, want display_data", s.Name, d.MsgType)
		}
		plain, _ = d.Data["text/plain"].(string)
		html, _ = d.Data["text/html"].(string)
		if plain == "" {
			t.Errorf("%s: no text/plain fallback:\n%s", s.Name, s)
		}
		checkHTML(t, s.Name, html)
		return plain, html
	}
	n := promptTokensOf(t, "gonnsight/tiny-gpt2", "The Eiffel Tower is in the city of") // kernel_client.py's model

	okStep("declare")
	// (a) Save a value and print it.
	okStep("save", fmt.Sprintf(`saved mlp0 shape: \[1 %d 64\] values: %d max: 0\.\d+`, n, n*64))
	// (b) A captured graph: an HTML table and its text fallback.
	plain, html := display(okStep("graph"))
	has(t, "graph text/plain", plain, `(?m)^placeholder\s+x\s+x\s+\(\)`, `(?m)^get_attr\s+weight\s+weight\s+\(\)\s+\{\}\s+\[256 64\]$`,
		`(?m)^get_attr\s+bias\s+bias\s`, `(?m)^call_function\s+dot_general\s+DotGeneral\s`, `(?m)^output\s+output\s+output\s`)
	has(t, "graph text/html", html, `<table class="gns-graph"`, `transformer\.h\.0\.mlp\.c_proj`, `<tr class="gns-op-placeholder"`,
		`<tr class="gns-op-get_attr"[^\n]*>weight<`, `<tr class="gns-op-get_attr"[^\n]*>bias<`, `<tr class="gns-op-call_function"`, `<tr class="gns-op-output"`)
	// (c) An attention pattern.
	s := okStep("attention", fmt.Sprintf(`attention weights: \[1 4 %d %d\]`, n, n))
	plain, html = display(s)
	has(t, "attention text/plain", plain, `head 0 \(query \\ key\)`, `head 3 \(query \\ key\)`, `␣Tower`)
	has(t, "attention text/html", html, `class="gns-attention-grid"`, `<img class="gns-picture"`, `class="gns-grid"`, `>head 3<`, `Tower`)
	if svg, _ := s.Displays[0].Data["image/svg+xml"].(string); !strings.Contains(svg, ">head 3</text>") {
		t.Errorf("attention: the display has no image/svg+xml picture with the heads' titles:\n%.300s", svg)
	}

	// (d) A minute-long cell, interrupted: it stops early, and the kernel runs the next cell.
	s = step("sleep")
	if s.InterruptedAfter == nil || !strings.Contains(s.Stdout, "sleeping") {
		t.Errorf("the cell was not interrupted while running:\n%s", s)
	}
	if s.Elapsed > 45 || strings.Contains(s.Stdout, "woke up") {
		t.Errorf("the interrupt did not stop the cell:\n%s", s)
	}
	if s.Status != "error" {
		t.Errorf("an interrupted cell should end in an error reply:\n%s", s)
	}
	if !event("sleep").Alive {
		t.Error("the kernel died on the interrupt")
	}
	okStep("after_interrupt", `(?m)^alive after interrupt$`)

	// (e) A panicking cell: an error reply, then the next cell runs.
	s = step("panic")
	if s.Status != "error" || len(s.Errors) == 0 || !strings.Contains(s.Stderr, "deliberate panic in a cell") {
		t.Errorf("want an error reply with the panic's message:\n%s", s)
	}
	if !event("panic").Alive {
		t.Error("the kernel died with the panicking cell")
	}
	okStep("after_panic", `(?m)^alive after panic$`)

	// (f) Cross-cell state: an edit loaded in one cell is traced in the next; a value kept in
	// one cell is read in the next.
	okStep("load_edits", `(?m)^loaded edits: \[WrapperModule\(transformer\.h\.1\.attn\.query -> query_wrapper\)\]$`)
	okStep("trace_edit", `(?m)^edits in this cell: \[WrapperModule\(transformer\.h\.1\.attn\.query -> query_wrapper\)\]$`,
		fmt.Sprintf(`(?m)^query_wrapper output shape: \[1 %d 64\]$`, n))
	kept := regexp.MustCompile(`(?m)^kept logits \[.*\] max \S+$`)
	session := regexp.MustCompile(`(?m)^session dir: (\S+)$`)
	s = okStep("keep", fmt.Sprintf(`(?m)^kept logits \[1 %d 50257\] max 0\.\d+$`, n), `(?m)^session dir: \S`)
	keptLine, sessionDir := kept.FindString(s.Stdout), ""
	if m := session.FindStringSubmatch(s.Stdout); m != nil {
		sessionDir = m[1]
	}
	s = okStep("kept", `(?m)^kept names: \[logits_before\]$`)
	if kept.FindString(s.Stdout) != keptLine || !strings.Contains(s.Stdout, "session dir: "+sessionDir+"\n") {
		t.Errorf("the next cell read another value or session (want %q in %s):\n%s", keptLine, sessionDir, s)
	}

	// (g) A typo'd module path: the error names the nearest valid paths; the kernel keeps running.
	okStep("typo", `trace error: no module or labelled value "transformer\.h\.0\.mpl"`, `nearest valid paths: transformer\.h\.0\.mlp\b`)
	okStep("after_typo", `(?m)^alive after typo$`)

	// A restart (same connection file) keeps the session directory: kept values and loaded
	// edits survive; the identity edit, which is data, applies again before anything is declared.
	if e := event("restart"); !e.Alive || e.ConnectionFile != run.ConnectionFile {
		t.Errorf("restart: %+v (connection file before: %s)", e, run.ConnectionFile)
	}
	okStep("redeclare_after_restart")
	s = okStep("kept_after_restart", `(?m)^kept names: \[logits_before\]$`)
	if kept.FindString(s.Stdout) != keptLine || !strings.Contains(s.Stdout, "session dir: "+sessionDir+"\n") {
		t.Errorf("the kept value did not survive the restart (want %q in %s):\n%s", keptLine, sessionDir, s)
	}
	okStep("edit_undeclared_after_restart", `(?m)^edits in this cell: \[WrapperModule\(transformer\.h\.1\.attn\.query -> query_wrapper\)\]$`,
		fmt.Sprintf(`(?m)^query_wrapper output shape: \[1 %d 64\]$`, n))
	okStep("redeclare_edit_after_restart")
	okStep("trace_edit_after_restart", `(?m)^edits in this cell: \[WrapperModule\(transformer\.h\.1\.attn\.query -> query_wrapper\)\]$`,
		fmt.Sprintf(`(?m)^query_wrapper output shape: \[1 %d 64\]$`, n))
	// An edit whose wrapper is Go code is not re-created: the next cell's trace fails naming it,
	// and works once the cell loads it again.
	okStep("code_edit", `(?m)^loaded edits: \[.*doubler.*\]$`)
	okStep("code_edit_next_cell", `(?m)^trace error: .*doubler.*Go code.*LoadEdits`)
	okStep("code_edit_loaded_again", `(?m)^edits after loading again: \[.*doubler.*\]$`)

	// The final shutdown removes the session directory.
	if run.ShutdownError != "" {
		t.Errorf("shutting the kernel down: %s", run.ShutdownError)
	}
	if run.SessionDir != sessionDir || run.SessionDirRemoved == nil || !*run.SessionDirRemoved {
		t.Errorf("the session directory %s should be removed after the kernel's shutdown (removed: %v)", run.SessionDir, run.SessionDirRemoved)
	}
}
