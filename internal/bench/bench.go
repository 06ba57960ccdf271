// Package bench measures gonnsight on GPT-2 small with random weights — forwards, generation,
// loading in a new process, trace, edit and compile overheads — for `go test -bench` and
// `gonnsight bench`, which prints the results as markdown tables beside PyTorch's.
package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/nnsight"
)

// Seed seeds the random weights of every benchmark model.
const Seed = 1

// Generation workload: NewTokens greedy tokens after a PromptLen-token prompt.
const (
	PromptLen = 8
	NewTokens = 32
)

// Shape is a forward's batch × sequence length.
type Shape struct{ Batch, Seq int }

func (s Shape) String() string { return fmt.Sprintf("%d×%d", s.Batch, s.Seq) }

// DefaultShapes are the forward shapes of the issue: 1×1, 1×8, 1×128, 1×512, 8×64.
var DefaultShapes = []Shape{{1, 1}, {1, 8}, {1, 128}, {1, 512}, {8, 64}}

// ParseShapes reads "1x1,1x8,8x64" ("×" works too).
func ParseShapes(s string) ([]Shape, error) {
	var out []Shape
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ReplaceAll(f, "×", "x"))
		if f == "" {
			continue
		}
		b, q, ok := strings.Cut(f, "x")
		bi, err1 := strconv.Atoi(b)
		qi, err2 := strconv.Atoi(q)
		if !ok || err1 != nil || err2 != nil || bi <= 0 || qi <= 0 {
			return nil, fmt.Errorf("shape %q: want BATCHxSEQ with positive integers, e.g. 1x128", f)
		}
		if qi > gpt2.Small().NPositions {
			return nil, fmt.Errorf("shape %q: GPT-2 small takes at most %d tokens", f, gpt2.Small().NPositions)
		}
		out = append(out, Shape{bi, qi})
	}
	if len(out) == 0 {
		return nil, errors.New("no shapes given")
	}
	return out, nil
}

// IDs are deterministic token ids of a shape (the same formula as bench_torch.py).
func IDs(s Shape) [][]int {
	ids := make([][]int, s.Batch)
	for b := range ids {
		ids[b] = make([]int, s.Seq)
		for t := range ids[b] {
			ids[b][t] = (1 + 7919*b + 104729*t) % 50257
		}
	}
	return ids
}

// Backends lists the backend configurations this program can run here: the Go backend,
// onnx:cpu when ONNX Runtime is linked in and its library found, xla:cpu when go-xla is
// linked in and its CPU plugin installed.
func Backends() []string {
	out := []string{"go"}
	if lib := engine.ONNXLibrary(); lib != "" {
		out = append(out, "onnx:cpu")
	}
	if slices.Contains(compute.List(), "xla") && xlaCPUPlugin() != "" {
		out = append(out, "xla:cpu")
	}
	return out
}

// xlaCPUPlugin looks for the PJRT CPU plugin where go-xla looks, without installing one.
func xlaCPUPlugin() string {
	for _, d := range engine.PJRTPluginDirs() {
		if m, _ := filepath.Glob(filepath.Join(d, "pjrt_c_api_cpu*.so")); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

var (
	modelsMu sync.Mutex
	models   = map[string]*nnsight.Model{}
)

// Model returns GPT-2 small with random weights (seed Seed) on a backend, one per backend
// and process.
func Model(backend string) (*nnsight.Model, error) {
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if m, ok := models[backend]; ok {
		return m, nil
	}
	m := nnsight.RandomLanguageModel(gpt2.Small(), Seed, nnsight.WithBackend(backend))
	if err := m.Load(); err != nil {
		return nil, err
	}
	if m.Engine().Name != backend {
		return nil, fmt.Errorf("asked for backend %s, got %s", backend, m.Backend())
	}
	models[backend] = m
	return m, nil
}

// Forward runs the model on a shape's ids: logits at every position.
func Forward(m *nnsight.Model, s Shape) error {
	res, err := m.Trace(IDs(s), nil)
	if err != nil {
		return err
	}
	if res.Logits() == nil {
		return errors.New("the forward returned no logits")
	}
	return nil
}

// Generate generates NewTokens tokens greedily after a PromptLen-token prompt, with the
// KV cache or without (recomputing the prefix every step).
func Generate(m *nnsight.Model, cache bool) error {
	opts := []nnsight.GenOption{nnsight.IgnoreEOS()}
	if !cache {
		opts = append(opts, nnsight.NoCache())
	}
	gen, err := m.Generate(IDs(Shape{1, PromptLen})[0], NewTokens, nil, opts...)
	if err != nil {
		return err
	}
	if len(gen.NewTokens[0]) != NewTokens {
		return fmt.Errorf("generated %d tokens, want %d", len(gen.NewTokens[0]), NewTokens)
	}
	return nil
}

// SavedModules are the outputs a traced forward saves: every block's.
func SavedModules(m *nnsight.Model) []string {
	var out []string
	for i := 0; i < m.Config().NLayer; i++ {
		out = append(out, fmt.Sprintf("transformer.h.%d", i))
	}
	return out
}

// Traced runs the forward with a typical trace: every block's output saved and one module's
// output set (transformer.h.5.mlp scaled by factor).
func Traced(m *nnsight.Model, s Shape, factor float64) error {
	saves := SavedModules(m)
	res, err := m.Trace(IDs(s), func(t *nnsight.Tracer) {
		for _, p := range saves {
			t.Module(p).Output().Save(p)
		}
		t.Module("transformer.h.5.mlp").Output().Set(func(x *g.Node) *g.Node { return g.MulScalar(x, factor) })
	})
	if err != nil {
		return err
	}
	if len(res.Names()) != len(saves)+1 {
		return fmt.Errorf("the trace saved %v", res.Names())
	}
	return nil
}

// QueryEdit is the edit whose cost is measured: an identity wrapper around layer 3's query.
var QueryEdit = edit.New("transformer.h.3.attn", "query", "bench_query_wrapper", edit.Identity())

// Stats are the timings of repetitions.
type Stats struct{ Samples []time.Duration }

func (s *Stats) Add(d time.Duration) { s.Samples = append(s.Samples, d) }

// Median of the samples (0 if none).
func (s Stats) Median() time.Duration {
	n := len(s.Samples)
	if n == 0 {
		return 0
	}
	v := slices.Clone(s.Samples)
	slices.Sort(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Min of the samples.
func (s Stats) Min() time.Duration {
	if len(s.Samples) == 0 {
		return 0
	}
	return slices.Min(s.Samples)
}

// Max of the samples.
func (s Stats) Max() time.Duration {
	if len(s.Samples) == 0 {
		return 0
	}
	return slices.Max(s.Samples)
}

// Scale divides every sample by n (per-token times).
func (s Stats) Scale(n int) Stats {
	out := Stats{Samples: make([]time.Duration, len(s.Samples))}
	for i, d := range s.Samples {
		out.Samples[i] = d / time.Duration(n)
	}
	return out
}

// Time runs fn once and returns its duration.
func Time(fn func() error) (time.Duration, error) {
	t0 := time.Now()
	err := fn()
	return time.Since(t0), err
}

// A Runner is one column of a measurement: it runs one repetition and says how long it took.
type Runner struct {
	Column string
	Run    func() (time.Duration, error)
}

// Interleave warms every runner up once, then runs reps rounds of one repetition per
// runner, so that all columns see the same machine load.
func Interleave(reps int, runners []Runner) (map[string]Stats, error) {
	out := map[string]Stats{}
	for _, r := range runners {
		if _, err := r.Run(); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Column, err)
		}
	}
	for i := 0; i < reps; i++ {
		for _, r := range runners {
			d, err := r.Run()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Column, err)
			}
			s := out[r.Column]
			s.Add(d)
			out[r.Column] = s
		}
	}
	return out, nil
}

// Row is one line of the results table: a workload measured on several columns.
type Row struct {
	Workload string
	Unit     string // "ms" or "ms/token"
	Cells    map[string]Stats
}

// Pair is a comparison on one backend: the same work with and without something (a trace,
// an edit), interleaved; Goal is the largest acceptable ratio (0 = none).
type Pair struct {
	Name, Backend string
	Base, With    Stats
	Goal          float64
}

// Ratio is median(With) / median(Base).
func (p Pair) Ratio() float64 {
	if p.Base.Median() == 0 {
		return math.NaN()
	}
	return float64(p.With.Median()) / float64(p.Base.Median())
}

// Report holds the results of a run.
type Report struct {
	Columns []string // backends, then "PyTorch" when compared
	Rows    []Row
	Pairs   []Pair
	Machine string
	Command string
	Host    *HostReport
	Cells   *CellsReport
}

// TorchColumn is the PyTorch column's name.
const TorchColumn = "PyTorch"

// Millis formats a duration in milliseconds with three significant digits at most.
func Millis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "–"
	case ms >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64)
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64)
	case ms >= 1:
		return strconv.FormatFloat(ms, 'f', 2, 64)
	default:
		return strconv.FormatFloat(ms, 'f', 3, 64)
	}
}

// Markdown renders a table with aligned columns; the first column is left-aligned, the
// others right-aligned.
func Markdown(header []string, rows [][]string) string {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = textWidth(h)
	}
	for _, r := range rows {
		for i := range header {
			if i < len(r) {
				width[i] = max(width[i], textWidth(r[i]))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i := range header {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			pad := strings.Repeat(" ", width[i]-textWidth(c))
			if i == 0 {
				b.WriteString(" " + c + pad + " |")
			} else {
				b.WriteString(" " + pad + c + " |")
			}
		}
		b.WriteString("\n")
	}
	line(header)
	b.WriteString("|")
	for i := range header {
		if i == 0 {
			b.WriteString(" " + strings.Repeat("-", width[i]) + " |")
		} else {
			b.WriteString(" " + strings.Repeat("-", width[i]-1) + ": |")
		}
	}
	b.WriteString("\n")
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

func textWidth(s string) int { return len([]rune(s)) }

// Markdown renders the report: the timings table (medians, with each backend's ratio to
// PyTorch when it was measured) and the overhead table.
func (r *Report) Markdown() string {
	var b strings.Builder
	if len(r.Rows) > 0 {
		header := []string{"workload (median)"}
		header = append(header, r.Columns...)
		hasTorch := slices.Contains(r.Columns, TorchColumn)
		var backends []string
		for _, c := range r.Columns {
			if c != TorchColumn {
				backends = append(backends, c)
			}
		}
		if hasTorch {
			for _, c := range backends {
				header = append(header, c+" ÷ "+TorchColumn)
			}
		}
		var rows [][]string
		for _, row := range r.Rows {
			cells := []string{row.Workload + ", " + row.Unit}
			for _, c := range r.Columns {
				cells = append(cells, Millis(row.Cells[c].Median()))
			}
			if hasTorch {
				t := row.Cells[TorchColumn].Median()
				for _, c := range backends {
					v := row.Cells[c].Median()
					if t == 0 || v == 0 {
						cells = append(cells, "–")
					} else {
						cells = append(cells, fmt.Sprintf("%.2f×", float64(v)/float64(t)))
					}
				}
			}
			rows = append(rows, cells)
		}
		b.WriteString(Markdown(header, rows))
	}
	if len(r.Pairs) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		var rows [][]string
		for _, p := range r.Pairs {
			goal := "–"
			if p.Goal > 0 {
				goal = fmt.Sprintf("≤ %.2f×", p.Goal)
			}
			rows = append(rows, []string{p.Name, p.Backend, Millis(p.Base.Median()), Millis(p.With.Median()),
				fmt.Sprintf("%.3f×", p.Ratio()), goal})
		}
		b.WriteString(Markdown([]string{"overhead (median)", "backend", "without, ms", "with, ms", "ratio", "goal"}, rows))
	}
	if r.Host != nil {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(r.Host.Markdown())
	}
	if r.Cells != nil {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(r.Cells.Markdown())
	}
	return b.String()
}

// Workloads a run can measure.
const (
	WForward  = "forward"
	WGenerate = "generate"
	WLoad     = "load"
	WTrace    = "trace"
	WEdit     = "edit"
	WCompile  = "compile"
)

// AllWorkloads in the order they run.
var AllWorkloads = []string{WForward, WGenerate, WLoad, WTrace, WEdit, WCompile, WHost, WCells}

// Config says what Run measures.
type Config struct {
	Backends  []string // default: Backends()
	Shapes    []Shape  // default: DefaultShapes
	Reps      int      // repetitions per measurement (default 5)
	Workloads []string // default: AllWorkloads
	// Torch starts tests/reference/bench_torch.py (TorchScript) and measures the same forward
	// and generation workloads in PyTorch, alternating with gonnsight.
	Torch       bool
	TorchScript string // default: found from the working directory upwards
	Python      string // default: /usr/bin/python3
	// TraceShape is the input of the trace, edit and compile measurements (default 1×128).
	TraceShape Shape
	// ChildArgs are the arguments this program needs to become a load-measuring child
	// (see RunChild); nil for a test binary, whose TestMain calls RunChild.
	ChildArgs []string
	// Log receives progress lines (nil: none).
	Log io.Writer
	// HostModel is the size of the random GPT-2 the host workload serves: "small" (default,
	// 124 M parameters, 500 MB) or "medium" (355 M, 1.4 GB).
	HostModel string
}

func (c *Config) defaults() {
	if len(c.Backends) == 0 {
		c.Backends = Backends()
	}
	if len(c.Shapes) == 0 {
		c.Shapes = DefaultShapes
	}
	if c.Reps <= 0 {
		c.Reps = 5
	}
	if len(c.Workloads) == 0 {
		c.Workloads = AllWorkloads
	}
	if c.TraceShape == (Shape{}) {
		c.TraceShape = Shape{1, 128}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Run measures the configured workloads and returns the report.
func Run(cfg Config) (*Report, error) {
	cfg.defaults()
	r := &run{cfg: cfg, rep: &Report{Columns: slices.Clone(cfg.Backends), Machine: Machine()}, models: map[string]*nnsight.Model{}}
	if cfg.Torch {
		torch, err := StartTorch(cfg.TorchScript, cfg.Python, cfg.Log)
		if err != nil {
			return nil, err
		}
		defer torch.Close()
		r.torch = torch
		r.rep.Columns = append(r.rep.Columns, TorchColumn)
		r.rep.Machine += "; " + torch.Version
	}
	if slices.ContainsFunc(cfg.Workloads, func(w string) bool { return w != WLoad && w != WHost && w != WCells }) {
		// The load measurement loads its models in child processes; the others share these.
		for _, b := range cfg.Backends {
			r.logf("bench: loading GPT-2 small (random weights) on %s", b)
			m, err := Model(b)
			if err != nil {
				return nil, fmt.Errorf("backend %s: %w", b, err)
			}
			r.models[b] = m
		}
	}
	type step struct {
		workload string
		fn       func() error
	}
	steps := []step{{WForward, r.forward}, {WGenerate, r.generate}, {WLoad, r.load}, {WHost, r.host}, {WCells, r.cells}}
	for _, b := range cfg.Backends {
		steps = append(steps, step{WTrace, func() error { return r.traceOverhead(b) }},
			step{WEdit, func() error { return r.editOverhead(b) }},
			step{WCompile, func() error { return r.compile(b) }})
	}
	for _, st := range steps {
		if slices.Contains(cfg.Workloads, st.workload) {
			if err := st.fn(); err != nil {
				return nil, err
			}
		}
	}
	r.rep.Rows = mergeRows(r.rep.Rows)
	return r.rep, nil
}

// run is one Run: its configuration, the models it measures, and the report it fills.
type run struct {
	cfg    Config
	rep    *Report
	torch  *Torch
	models map[string]*nnsight.Model // by backend
}

func (r *run) logf(format string, args ...any) { fmt.Fprintf(r.cfg.Log, format+"\n", args...) }

// goRunners times fn on each backend's model, one column per backend.
func (r *run) goRunners(fn func(m *nnsight.Model) error) []Runner {
	var rs []Runner
	for _, b := range r.cfg.Backends {
		m := r.models[b]
		rs = append(rs, Runner{Column: b, Run: func() (time.Duration, error) { return Time(func() error { return fn(m) }) }})
	}
	return rs
}

func (r *run) forward() error {
	for _, s := range r.cfg.Shapes {
		r.logf("bench: forward %s", s)
		rs := r.goRunners(func(m *nnsight.Model) error { return Forward(m, s) })
		if r.torch != nil {
			rs = append(rs, Runner{Column: TorchColumn, Run: func() (time.Duration, error) { return r.torch.Forward(s) }})
		}
		cells, err := Interleave(r.cfg.Reps, rs)
		if err != nil {
			return fmt.Errorf("forward %s: %w", s, err)
		}
		r.rep.Rows = append(r.rep.Rows, Row{Workload: "forward " + s.String(), Unit: "ms", Cells: cells})
	}
	return nil
}

func (r *run) generate() error {
	for _, cache := range []bool{true, false} {
		name := fmt.Sprintf("generate %d after %d, KV cache", NewTokens, PromptLen)
		if !cache {
			name = fmt.Sprintf("generate %d after %d, no cache", NewTokens, PromptLen)
		}
		r.logf("bench: %s", name)
		rs := r.goRunners(func(m *nnsight.Model) error { return Generate(m, cache) })
		if r.torch != nil {
			rs = append(rs, Runner{Column: TorchColumn, Run: func() (time.Duration, error) { return r.torch.Generate(cache) }})
		}
		reps := r.cfg.Reps
		if !cache {
			reps = max(1, (reps+1)/2) // the slowest workload: half the repetitions
		}
		cells, err := Interleave(reps, rs)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for c, s := range cells {
			cells[c] = s.Scale(NewTokens)
		}
		r.rep.Rows = append(r.rep.Rows, Row{Workload: name, Unit: "ms/token", Cells: cells})
	}
	return nil
}

// load measures a new process loading the model, split into the load and the first forward.
func (r *run) load() error {
	r.logf("bench: load time in a new process (writing the 500 MB model once if needed)")
	dir, err := EnsureModelDir(r.cfg.Log)
	if err != nil {
		return err
	}
	var rs []Runner
	loads := map[string]Stats{}  // the child's own LanguageModel(dir).Load()
	firsts := map[string]Stats{} // the child's first forward
	for _, b := range r.cfg.Backends {
		rs = append(rs, Runner{Column: b, Run: func() (time.Duration, error) {
			wall, res, err := LoadInChild(dir, b, r.cfg.ChildArgs)
			if err != nil {
				return 0, err
			}
			st := loads[b]
			st.Add(res.Load)
			loads[b] = st
			st = firsts[b]
			st.Add(res.Forward)
			firsts[b] = st
			return wall - res.Forward, nil
		}})
	}
	cells, err := Interleave(r.cfg.Reps, rs)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	for b := range loads {
		loads[b] = Stats{Samples: loads[b].Samples[1:]} // without the warm-up
		firsts[b] = Stats{Samples: firsts[b].Samples[1:]}
	}
	r.rep.Rows = append(r.rep.Rows,
		Row{Workload: "load: exec → model loaded, new process (wall − first forward)", Unit: "ms", Cells: cells},
		Row{Workload: "load: LanguageModel(dir).Load() inside it", Unit: "ms", Cells: loads},
		Row{Workload: "load: its first forward, 1 token (compile, one-time weight transposes)", Unit: "ms", Cells: firsts})
	return nil
}

func (r *run) traceOverhead(b string) error {
	m, s := r.models[b], r.cfg.TraceShape
	r.logf("bench: trace overhead on %s", b)
	cells, err := Interleave(r.cfg.Reps, []Runner{
		{Column: "base", Run: func() (time.Duration, error) { return Time(func() error { return Forward(m, s) }) }},
		{Column: "with", Run: func() (time.Duration, error) { return Time(func() error { return Traced(m, s, 1) }) }},
	})
	if err != nil {
		return fmt.Errorf("trace overhead: %w", err)
	}
	r.rep.Pairs = append(r.rep.Pairs, Pair{Name: fmt.Sprintf("trace: %d saves + 1 set vs plain forward, %s", len(SavedModules(m)), s),
		Backend: b, Base: cells["base"], With: cells["with"], Goal: 1.05})
	return nil
}

func (r *run) editOverhead(b string) error {
	m, s := r.models[b], r.cfg.TraceShape
	r.logf("bench: edit overhead on %s", b)
	withEdit := func() (time.Duration, error) {
		if err := m.LoadEdits(QueryEdit); err != nil {
			return 0, err
		}
		defer m.ClearEdits()
		return Time(func() error { return Forward(m, s) })
	}
	cells, err := Interleave(r.cfg.Reps, []Runner{
		{Column: "base", Run: func() (time.Duration, error) { return Time(func() error { return Forward(m, s) }) }},
		{Column: "with", Run: withEdit},
	})
	if err != nil {
		return fmt.Errorf("edit overhead: %w", err)
	}
	r.rep.Pairs = append(r.rep.Pairs, Pair{Name: "edit: identity wrapper on h.3.attn query vs none, " + s.String(),
		Backend: b, Base: cells["base"], With: cells["with"], Goal: 1.03})
	return nil
}

// compile measures a traced graph built, compiled and run (cold) against one from the cache.
func (r *run) compile(b string) error {
	m := r.models[b]
	r.logf("bench: graph build and compile on %s", b)
	// Every cold run sets a different constant, so its graph is new to the cache.
	cold := 0
	cs := Shape{1, 8}
	cells, err := Interleave(r.cfg.Reps, []Runner{
		{Column: "cached", Run: func() (time.Duration, error) { return Time(func() error { return Traced(m, cs, 1) }) }},
		{Column: "cold", Run: func() (time.Duration, error) {
			cold++
			return Time(func() error { return Traced(m, cs, 1+float64(cold)/1024) })
		}},
		{Column: "build", Run: func() (time.Duration, error) {
			return Time(func() error {
				_, err := m.Scan(IDs(cs), func(t *nnsight.Tracer) {
					for _, p := range SavedModules(m) {
						t.Module(p).Output().Save(p)
					}
				})
				return err
			})
		}},
	})
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	r.rep.Pairs = append(r.rep.Pairs, Pair{Name: "traced graph " + cs.String() + ": cold (build+compile+run) vs from the cache",
		Backend: b, Base: cells["cached"], With: cells["cold"]})
	r.rep.Rows = append(r.rep.Rows,
		Row{Workload: "traced graph " + cs.String() + " built, compiled, run (cold)", Unit: "ms", Cells: map[string]Stats{b: cells["cold"]}},
		Row{Workload: "traced graph " + cs.String() + " from the compile cache", Unit: "ms", Cells: map[string]Stats{b: cells["cached"]}},
		Row{Workload: "traced graph " + cs.String() + " built only (Scan)", Unit: "ms", Cells: map[string]Stats{b: cells["build"]}})
	return nil
}

// mergeRows joins rows of the same workload (measured per backend) into one.
func mergeRows(rows []Row) []Row {
	var out []Row
	idx := map[string]int{}
	for _, r := range rows {
		if i, ok := idx[r.Workload]; ok {
			for c, s := range r.Cells {
				out[i].Cells[c] = s
			}
			continue
		}
		idx[r.Workload] = len(out)
		out = append(out, Row{Workload: r.Workload, Unit: r.Unit, Cells: maps.Clone(r.Cells)})
	}
	return out
}

// Machine describes this machine: CPU, cores, Go version and experiments.
func Machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s %s/%s, %s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, simdNote)
}

// ModelDir is where EnsureModelDir keeps the 500 MB random GPT-2 small used by the load
// and host measurements.
func ModelDir() string { return modelDirOf("small") }

func modelDirOf(size string) string {
	name := "gpt2-" + size + "-random"
	if h := os.Getenv("GONNSIGHT_HOME"); h != "" {
		return filepath.Join(h, "bench", name)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "gonnsight", "bench", name)
}

// EnsureModelDir writes GPT-2 small with random weights (seed Seed) in Hugging Face's layout
// once, and returns its directory.
func EnsureModelDir(log io.Writer) (string, error) { return ensureModelDirOf("small", log) }

// sizedConfig is GPT-2's config of a size: "small" or "medium".
func sizedConfig(size string) (gpt2.Config, error) {
	c := gpt2.Small()
	switch size {
	case "", "small":
	case "medium":
		c.NLayer, c.NEmbd, c.NHead = 24, 1024, 16
	default:
		return c, fmt.Errorf("model size %q: want small or medium", size)
	}
	return c, nil
}

func ensureModelDirOf(size string, log io.Writer) (string, error) {
	c, err := sizedConfig(size)
	if err != nil {
		return "", err
	}
	if size == "" {
		size = "small"
	}
	dir := modelDirOf(size)
	want := int64(c.NumParams()*4) * 9 / 10
	if st, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil && st.Size() > want {
		return dir, nil
	}
	if log != nil {
		fmt.Fprintf(log, "bench: writing GPT-2 %s with random weights to %s\n", size, dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".gpt2-"+size+"-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := gpt2.MakeTiny(tmp, gpt2.TinyOptions{Layers: c.NLayer, Heads: c.NHead, Embd: c.NEmbd, Positions: c.NPositions, Seed: Seed}); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// EnvChild makes a program that calls RunChild measure a model load and exit: its value is
// the model directory.
const EnvChild = "GONNSIGHT_BENCH_LOAD_CHILD"

// ChildResult is what a load-measuring child reports.
type ChildResult struct {
	Load    time.Duration `json:"load_ns"`    // nnsight LanguageModel(dir).Load()
	Forward time.Duration `json:"forward_ns"` // the first forward (one token), compile included
	Backend string        `json:"backend"`
	MaxRSS  int64         `json:"max_rss,omitempty"` // peak resident set, bytes (host measurements)
}

// RunChild, when EnvChild is set, loads the model directory it names, runs one forward,
// prints a ChildResult as JSON on stdout and exits; otherwise it returns at once. Programs
// that measure load times in a child call it first thing (a test binary from TestMain,
// gonnsight from its bench command).
func RunChild() {
	dir := os.Getenv(EnvChild)
	if dir == "" {
		return
	}
	var res *ChildResult
	var err error
	if mode := childMode(); mode != "" {
		res, err = runHostChild(dir, mode)
	} else {
		res, err = childLoad(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

func childLoad(dir string) (*ChildResult, error) {
	t0 := time.Now()
	m := nnsight.LanguageModel(dir)
	if err := m.Load(); err != nil {
		return nil, err
	}
	t1 := time.Now()
	if _, err := m.Trace([]int{1}, nil); err != nil {
		return nil, err
	}
	return &ChildResult{Load: t1.Sub(t0), Forward: time.Since(t1), Backend: m.Engine().Name}, nil
}

// LoadInChild runs this program again as a load-measuring child on a backend and returns
// the wall time from exec to exit with the child's own report.
func LoadInChild(dir, backend string, args []string) (time.Duration, *ChildResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), EnvChild+"="+dir, engine.EnvBackend+"="+backend)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return 0, nil, fmt.Errorf("load child (%s %s): %v: %s", exe, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	var res ChildResult
	if err := json.Unmarshal([]byte(lastLine(out.String())), &res); err != nil {
		return 0, nil, fmt.Errorf("load child printed %q: %v", out.String(), err)
	}
	if res.Backend != backend {
		return 0, nil, fmt.Errorf("load child ran on %s, not %s", res.Backend, backend)
	}
	return wall, &res, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// Torch is a running tests/reference/bench_torch.py that measures the same workloads in
// PyTorch on request.
type Torch struct {
	Version string
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
}

// FindTorchScript looks for tests/reference/bench_torch.py from the working directory up.
func FindTorchScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "tests", "reference", "bench_torch.py")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tests/reference/bench_torch.py not found from the working directory up: run from the repository")
		}
		dir = parent
	}
}

// StartTorch starts the PyTorch peer: 2 threads, OMP_WAIT_POLICY=PASSIVE (its threads do not
// spin while gonnsight runs), the same random-weights GPT-2 small (seed Seed).
func StartTorch(script, python string, log io.Writer) (*Torch, error) {
	if script == "" {
		var err error
		if script, err = FindTorchScript(); err != nil {
			return nil, err
		}
	}
	if python == "" {
		python = "/usr/bin/python3"
	}
	cmd := exec.Command(python, script, "--serve", "--seed", strconv.Itoa(Seed))
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=2", "OMP_WAIT_POLICY=PASSIVE", "MKL_NUM_THREADS=2", "OPENBLAS_NUM_THREADS=2")
	if log != nil {
		cmd.Stderr = log
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s %s: %w", python, script, err)
	}
	t := &Torch{cmd: cmd, in: in, out: bufio.NewReader(out)}
	var hello struct {
		Torch   string `json:"torch"`
		Threads int    `json:"threads"`
		BLAS    string `json:"blas"`
		Error   string `json:"error"`
	}
	if err := t.read(&hello); err != nil {
		t.Close()
		return nil, fmt.Errorf("%s: %w (is python3-torch installed?)", script, err)
	}
	if hello.Error != "" {
		t.Close()
		return nil, fmt.Errorf("%s: %s", script, hello.Error)
	}
	t.Version = fmt.Sprintf("PyTorch %s, %d threads, %s", hello.Torch, hello.Threads, hello.BLAS)
	return t, nil
}

func (t *Torch) read(v any) error {
	line, err := t.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading from the PyTorch peer: %w", err)
	}
	return json.Unmarshal([]byte(line), v)
}

func (t *Torch) call(req map[string]any) (time.Duration, error) {
	data, _ := json.Marshal(req)
	if _, err := t.in.Write(append(data, '\n')); err != nil {
		return 0, fmt.Errorf("PyTorch peer: %w", err)
	}
	var resp struct {
		Seconds float64 `json:"seconds"`
		Error   string  `json:"error"`
	}
	if err := t.read(&resp); err != nil {
		return 0, err
	}
	if resp.Error != "" {
		return 0, errors.New("PyTorch: " + resp.Error)
	}
	return time.Duration(resp.Seconds * float64(time.Second)), nil
}

// Forward times one PyTorch forward of a shape (logits at every position).
func (t *Torch) Forward(s Shape) (time.Duration, error) {
	return t.call(map[string]any{"op": "forward", "batch": s.Batch, "seq": s.Seq})
}

// Generate times one PyTorch greedy generation of NewTokens after PromptLen tokens.
func (t *Torch) Generate(cache bool) (time.Duration, error) {
	return t.call(map[string]any{"op": "generate", "prompt": PromptLen, "new": NewTokens, "cache": cache})
}

// Close stops the peer.
func (t *Torch) Close() {
	if t.in != nil {
		t.in.Close()
	}
	if t.cmd != nil && t.cmd.Process != nil {
		done := make(chan struct{})
		go func() { t.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.cmd.Process.Kill()
			<-done
		}
	}
}
