// Package runner executes Jupyter notebooks headless: a Jupyter client over ZeroMQ that starts a
// kernel from its kernelspec, runs every code cell in order and writes the outputs back.
package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultKernelName is the kernelspec used when neither Options nor the notebook name one.
const DefaultKernelName = "gonnsight"

// MetadataKey is the notebook metadata key under which a run is recorded.
const MetadataKey = "gonnsight"

// Options configures RunNotebook.
type Options struct {
	// KernelName is the kernelspec to run; default: the notebook's metadata.kernelspec.name,
	// else DefaultKernelName.
	KernelName string
	// Timeout limits each cell; 0 means no limit. A cell that runs over is interrupted and the
	// run stops with a *CellError whose Reason is ReasonTimeout.
	Timeout time.Duration
	// AllowErrors continues past cells that raise errors (the run still records them).
	AllowErrors bool
	// Params replaces assignments in the cell tagged "parameters" (papermill style).
	Params map[string]string
	// Out is where the executed notebook is written; default: NAME.out.ipynb next to the input.
	Out string
	// ExtraMetadata is added to the notebook's metadata.gonnsight object (e.g. backend, model).
	ExtraMetadata map[string]any
	// Log receives the kernel's stdout/stderr and the runner's diagnostics; nil discards them.
	Log io.Writer
	// StartupTimeout limits the wait for the kernel's first kernel_info_reply; default 2 minutes.
	StartupTimeout time.Duration
	// Cwd is the kernel's working directory; default: the notebook's directory.
	Cwd string
	// Version is recorded as metadata.gonnsight.version.
	Version string
	// Header puts a markdown cell at the top of the executed notebook that shows the run: the
	// version, backend, model, parameters, date and each cell's status and time. It replaces
	// the header of an earlier run instead of adding another.
	Header bool

	// Stop, when closed, stops the run (Ctrl-C or SIGTERM on `gonnsight run`): the running
	// cell is interrupted, no further cell runs, the notebook is written with what ran, the
	// kernel and every process it started are ended, and RunNotebook returns an error that
	// errors.Is ErrStopped.
	Stop <-chan struct{}
}

// ErrStopped is returned (wrapped) when Options.Stop ended a run.
var ErrStopped = errors.New("run stopped")

// Result describes an executed notebook.
type Result struct {
	// OutputPath is where the executed notebook is written.
	OutputPath string
	// Written reports whether it was written (false when saving failed).
	Written bool
	// KernelName is the kernelspec that ran it.
	KernelName string
	Start, End time.Time
	// Cells holds one entry per executed code cell, in order.
	Cells []CellResult
	// Notebook is the executed notebook as written.
	Notebook map[string]any
}

// CellResult is the execution of one code cell.
type CellResult struct {
	// Number is the cell's 1-based position among all the notebook's cells.
	Number         int
	ExecutionCount int
	Duration       time.Duration
	// Status is "ok", "error", "timeout", "dead" or "interrupted" (a stopped run).
	Status  string
	Outputs []map[string]any
	// Source is the code that ran.
	Source string
	// Err is why the cell failed (nil when Status is "ok").
	Err *CellError
}

// Reasons a cell failed, in CellError.Reason.
const (
	ReasonError      = "error"
	ReasonTimeout    = "timeout"
	ReasonKernelDied = "kernel died"
	ReasonStopped    = "stopped"
)

// CellError is the error that stopped a run at a cell.
type CellError struct {
	// Cell is the cell's 1-based position among all the notebook's cells.
	Cell   int
	Reason string
	// Ename, Evalue and Traceback come from the kernel's error (ReasonError).
	Ename, Evalue string
	Traceback     []string
	// Timeout is the limit that was exceeded (ReasonTimeout).
	Timeout time.Duration
	// Err is the kernel's exit (ReasonKernelDied).
	Err error
	// Output is the text the cell wrote about its failure: its stderr (a panic's message and
	// stack) and the kernel's error reports (the compiler's messages), last lines only.
	Output string
}

func (e *CellError) Error() string {
	var msg string
	switch e.Reason {
	case ReasonTimeout:
		msg = fmt.Sprintf("cell %d: timed out after %v", e.Cell, e.Timeout)
	case ReasonKernelDied:
		msg = fmt.Sprintf("cell %d: %v", e.Cell, e.Err)
	case ReasonStopped:
		msg = fmt.Sprintf("cell %d: interrupted: %v", e.Cell, e.Err)
	default:
		msg = fmt.Sprintf("cell %d: %s: %s", e.Cell, e.Ename, e.Evalue)
	}
	if out := strings.TrimSpace(e.Output); out != "" && !strings.Contains(msg, out) {
		msg += "\n\t" + strings.ReplaceAll(out, "\n", "\n\t")
	}
	return msg
}

func (e *CellError) Unwrap() error { return e.Err }

// DefaultOutputPath returns NAME.out.ipynb next to the notebook path.
func DefaultOutputPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".out.ipynb"
}

// RunNotebook executes the notebook at path and writes the executed copy to opts.Out. The copy
// is written even when a cell fails, and the returned error is then a *CellError.
func RunNotebook(path string, opts Options) (*Result, error) {
	nb, err := loadNotebook(path)
	if err != nil {
		return nil, err
	}
	meta := nb["metadata"].(map[string]any)
	name := opts.KernelName
	if name == "" {
		if ks, ok := meta["kernelspec"].(map[string]any); ok {
			name, _ = ks["name"].(string)
		}
	}
	if name == "" {
		name = DefaultKernelName
	}
	spec, err := FindKernelspec(name)
	if err != nil {
		return nil, err
	}
	lang := strings.ToLower(spec.Language)
	if err := applyParams(nb, opts.Params, lang); err != nil {
		return nil, fmt.Errorf("notebook %s: %w", path, err)
	}
	out := opts.Out
	if out == "" {
		out = DefaultOutputPath(path)
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("cell timeout %v is negative (0 means no limit)", opts.Timeout)
	}
	if err := checkWritable(out); err != nil {
		return nil, err
	}
	cwd := opts.Cwd
	if cwd == "" {
		cwd = filepath.Dir(path)
	}
	startup := opts.StartupTimeout
	if startup <= 0 {
		startup = 2 * time.Minute
	}

	if opts.Header {
		removeRunHeader(nb)
	}
	cells := notebookCells(nb)
	var minor int64
	if n, ok := nb["nbformat_minor"].(json.Number); ok {
		minor, _ = n.Int64()
	}
	for _, c := range cells {
		if c == nil {
			continue
		}
		if _, ok := c["id"]; !ok && minor >= 5 {
			c["id"] = newID()[:8] // cell ids are required from nbformat 4.5 on
		}
		if c["cell_type"] == "code" {
			c["outputs"] = []any{}
			c["execution_count"] = nil
		}
	}

	res := &Result{OutputPath: out, KernelName: spec.Name, Start: time.Now(), Notebook: nb}
	r := &run{opts: opts, displays: map[string][]map[string]any{}}
	runErr := func() error {
		k, err := startKernel(spec, cwd, opts.Log)
		if err != nil {
			return err
		}
		r.k = k
		k.stop = opts.Stop
		defer k.shutdown(10 * time.Second)
		deadline := time.Now().Add(startup)
		if err := k.connect(deadline); err != nil {
			return err
		}
		info, err := k.waitReady(deadline)
		if err != nil {
			return err
		}
		if li, ok := info["language_info"].(map[string]any); ok {
			meta["language_info"] = completeLanguageInfo(li, spec.Language)
		}
		ks, _ := meta["kernelspec"].(map[string]any)
		if ks == nil {
			ks = map[string]any{"name": spec.Name}
			meta["kernelspec"] = ks
		}
		for k, v := range map[string]string{"name": spec.Name, "display_name": spec.DisplayName, "language": spec.Language} {
			if cur, _ := ks[k].(string); cur == "" && v != "" {
				ks[k] = v
			}
		}
		for i, c := range cells {
			if c == nil || c["cell_type"] != "code" || strings.TrimSpace(cellSource(c)) == "" {
				continue
			}
			if r.stopped() {
				return &CellError{Cell: i + 1, Reason: ReasonStopped, Err: ErrStopped}
			}
			cr, err := r.executeCell(i+1, cellSource(c))
			cr.Source = cellSource(c)
			if ce := (*CellError)(nil); errors.As(err, &ce) {
				cr.Err = ce
			}
			c["outputs"] = notebookOutputs(cr.Outputs)
			if cr.ExecutionCount > 0 {
				c["execution_count"] = cr.ExecutionCount
			}
			res.Cells = append(res.Cells, cr)
			if err != nil {
				var ce *CellError
				if errors.As(err, &ce) && ce.Reason == ReasonError && opts.AllowErrors {
					continue
				}
				return err
			}
		}
		return nil
	}()
	res.End = time.Now()
	// Outputs updated by update_display_data after their cell ran.
	for i, c := range cells {
		for _, cr := range res.Cells {
			if cr.Number == i+1 {
				c["outputs"] = notebookOutputs(cr.Outputs)
			}
		}
	}
	meta[MetadataKey] = runMetadata(res, opts, runErr)
	if opts.Header {
		insertRunHeader(nb, res, opts, runErr, minor >= 5)
	}
	if err := saveNotebook(out, nb); err != nil {
		if runErr != nil {
			return res, fmt.Errorf("%w (and %v)", runErr, err)
		}
		return res, err
	}
	res.Written = true
	return res, runErr
}

// checkWritable makes sure, before any cell runs, that the executed notebook can be written
// at out: its folder exists and takes a new file.
func checkWritable(out string) error {
	dir := filepath.Dir(out)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cannot write the executed notebook to %s: its folder %s does not exist (create it first); nothing was run", out, dir)
	}
	if !st.IsDir() {
		return fmt.Errorf("cannot write the executed notebook to %s: %s is not a folder; nothing was run", out, dir)
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return fmt.Errorf("cannot write the executed notebook to %s: it is a folder; nothing was run", out)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(out)+".probe-*")
	if err != nil {
		return fmt.Errorf("cannot write the executed notebook to %s: %v; nothing was run", out, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

func notebookOutputs(outs []map[string]any) []any {
	list := make([]any, len(outs))
	for i, o := range outs {
		list[i] = nbOutput(o)
	}
	return list
}

// runMetadata is the metadata.gonnsight object of an executed notebook.
func runMetadata(res *Result, opts Options, runErr error) map[string]any {
	m := map[string]any{}
	for k, v := range opts.ExtraMetadata {
		m[k] = v
	}
	cells := []any{}
	for _, c := range res.Cells {
		entry := map[string]any{
			"cell": c.Number, "execution_count": c.ExecutionCount, "status": c.Status,
			"duration_seconds": c.Duration.Seconds(),
		}
		if c.Err != nil {
			entry["error"] = c.Err.Error()
		}
		cells = append(cells, entry)
	}
	params := map[string]any{}
	for k, v := range opts.Params {
		params[k] = v
	}
	m["version"] = opts.Version
	m["kernel"] = res.KernelName
	m["start_time"] = res.Start.UTC().Format(time.RFC3339Nano)
	m["end_time"] = res.End.UTC().Format(time.RFC3339Nano)
	m["duration_seconds"] = res.End.Sub(res.Start).Seconds()
	m["cells"] = cells
	m["parameters"] = params
	if runErr != nil {
		m["error"] = runErr.Error()
	}
	return m
}

// run is the state of one notebook execution.
type run struct {
	opts     Options
	k        *kernelClient
	displays map[string][]map[string]any // display_id → outputs showing it
}

// stopped reports whether Options.Stop is closed.
func (r *run) stopped() bool {
	select {
	case <-r.opts.Stop:
		return true
	default:
		return false
	}
}

// executeCell runs one cell and collects its outputs until the kernel reports idle for it.
func (r *run) executeCell(number int, code string) (cr CellResult, err error) {
	cr = CellResult{Number: number, Status: "ok"}
	start := time.Now()
	defer func() { cr.Duration = time.Since(start) }()
	k := r.k
	msgID, err := k.send(k.shell, "execute_request", map[string]any{
		"code": code, "silent": false, "store_history": true, "user_expressions": map[string]any{},
		"allow_stdin": false, "stop_on_error": !r.opts.AllowErrors,
	})
	if err != nil {
		cr.Status = "dead"
		return cr, &CellError{Cell: number, Reason: ReasonKernelDied, Err: err}
	}
	var (
		reply        map[string]any
		idle         bool
		clearPending bool
		timedOut     bool
		timeoutC     <-chan time.Time
		graceC       <-chan time.Time
		lastError    map[string]any
		stoppedRun   bool
		stopC        = r.opts.Stop
	)
	if r.opts.Timeout > 0 {
		t := time.NewTimer(r.opts.Timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	addOutput := func(o map[string]any) {
		if clearPending {
			cr.Outputs, clearPending = nil, false
		}
		cr.Outputs = append(cr.Outputs, o)
	}
	handleIOPub := func(m *message) {
		if m.Parent.MsgID != msgID {
			return
		}
		c := m.Content
		switch m.Header.MsgType {
		case "status":
			if c["execution_state"] == "idle" {
				idle = true
			}
		case "stream":
			name, _ := c["name"].(string)
			text, _ := c["text"].(string)
			if clearPending {
				cr.Outputs, clearPending = nil, false
			}
			if n := len(cr.Outputs); n > 0 && cr.Outputs[n-1]["output_type"] == "stream" && cr.Outputs[n-1]["name"] == name {
				cr.Outputs[n-1]["text"] = cr.Outputs[n-1]["text"].(string) + text
			} else {
				addOutput(map[string]any{"output_type": "stream", "name": name, "text": text})
			}
		case "display_data", "execute_result":
			o := map[string]any{"output_type": m.Header.MsgType, "data": orEmpty(c["data"]), "metadata": orEmpty(c["metadata"])}
			if m.Header.MsgType == "execute_result" {
				o["execution_count"] = c["execution_count"]
			}
			addOutput(o)
			if tr, ok := c["transient"].(map[string]any); ok {
				if id, ok := tr["display_id"].(string); ok && id != "" {
					r.displays[id] = append(r.displays[id], o)
				}
			}
		case "update_display_data":
			if tr, ok := c["transient"].(map[string]any); ok {
				if id, ok := tr["display_id"].(string); ok {
					for _, o := range r.displays[id] {
						o["data"], o["metadata"] = orEmpty(c["data"]), orEmpty(c["metadata"])
					}
				}
			}
		case "error":
			o := map[string]any{"output_type": "error", "ename": c["ename"], "evalue": c["evalue"], "traceback": orList(c["traceback"])}
			addOutput(o)
			lastError = o
		case "clear_output":
			if w, _ := c["wait"].(bool); w {
				clearPending = true
			} else {
				cr.Outputs = nil
			}
		}
	}
	for reply == nil || !idle {
		select {
		case m := <-k.iopubCh:
			handleIOPub(m)
		case m := <-k.shellCh:
			if m.Parent.MsgID == msgID && m.Header.MsgType == "execute_reply" {
				reply = m.Content
			}
		case <-k.exited:
			// Collect what the kernel published before it died.
			drain := time.After(200 * time.Millisecond)
		drainLoop:
			for {
				select {
				case m := <-k.iopubCh:
					handleIOPub(m)
				case <-drain:
					break drainLoop
				}
			}
			cr.Status = "dead"
			return cr, &CellError{Cell: number, Reason: ReasonKernelDied, Err: k.diedError(fmt.Sprintf("while running cell %d", number)),
				Output: errorText(cr.Outputs)}
		case <-timeoutC:
			timedOut, timeoutC = true, nil
			logf(r.opts.Log, "gonnsight: cell %d timed out after %v, interrupting the kernel", number, r.opts.Timeout)
			if err := k.interrupt(); err != nil {
				logf(r.opts.Log, "gonnsight: interrupting the kernel: %v", err)
			}
			graceC = time.After(10 * time.Second)
		case <-stopC:
			stoppedRun, stopC = true, nil
			logf(r.opts.Log, "gonnsight: stopping: interrupting cell %d", number)
			if err := k.interrupt(); err != nil {
				logf(r.opts.Log, "gonnsight: interrupting the kernel: %v", err)
			}
			if graceC == nil {
				graceC = time.After(5 * time.Second)
			}
		case <-graceC:
			reply, idle = map[string]any{}, true
		}
	}
	if stoppedRun {
		cr.Status = "interrupted"
		if ec, ok := reply["execution_count"].(json.Number); ok {
			n, _ := ec.Int64()
			cr.ExecutionCount = int(n)
		}
		return cr, &CellError{Cell: number, Reason: ReasonStopped, Err: ErrStopped}
	}
	if ec, ok := reply["execution_count"].(json.Number); ok {
		n, _ := ec.Int64()
		cr.ExecutionCount = int(n)
	}
	if timedOut {
		cr.Status = "timeout"
		return cr, &CellError{Cell: number, Reason: ReasonTimeout, Timeout: r.opts.Timeout, Output: errorText(cr.Outputs)}
	}
	if status, _ := reply["status"].(string); status != "ok" {
		cr.Status = "error"
		ce := &CellError{Cell: number, Reason: ReasonError, Output: errorText(cr.Outputs)}
		src := reply
		if _, ok := src["ename"]; !ok && lastError != nil {
			src = lastError
		}
		ce.Ename, _ = src["ename"].(string)
		ce.Evalue, _ = src["evalue"].(string)
		for _, t := range orList(src["traceback"]) {
			if s, ok := t.(string); ok {
				ce.Traceback = append(ce.Traceback, s)
			}
		}
		if ce.Ename == "" {
			ce.Ename = "execution " + status
		}
		return cr, ce
	}
	return cr, nil
}

func orEmpty(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

func orList(v any) []any {
	l, _ := v.([]any)
	if l == nil {
		return []any{}
	}
	return l
}
