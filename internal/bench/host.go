package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/internal/host"
	"github.com/gonnsight/gonnsight/internal/remote"
	"github.com/gonnsight/gonnsight/nnsight"
)

// WHost measures the model host: notebook cells (new processes) with and without it, the
// round trip of one traced forward, and the memory of two clients on one host.
const WHost = "host"

// EnvHostChild makes a RunChild child a notebook-cell stand-in: "empty" (start and exit),
// "inproc" (load the model named by EnvChild and trace it) or "host" (the same trace through
// the host that GONNSIGHT_REMOTE names).
const EnvHostChild = "GONNSIGHT_BENCH_HOST_CHILD"

// CellShape is the input of the traced forward of the host measurements.
var CellShape = Shape{1, 8}

// HostReport holds the host measurements, all taken in one run, interleaved.
type HostReport struct {
	Backend string
	Model   string // what the host served
	// New processes, exec to exit: an empty one, one that loads the model and runs a traced
	// 1×8 forward, one that runs the same trace through the host (model already resident).
	Empty, InProc, ViaHost Stats
	// Peak RSS of the last child of each kind.
	InProcRSS, ViaHostRSS int64
	// Inside the host's cells: opening the model (config, tokenizer, weight names) and the
	// traced forward (build, record, run on the host, outputs back).
	HostLoad, HostForward Stats
	// A warm traced 1×8 forward in this process: in-process, through the host over its Unix
	// socket, and over loopback TCP.
	Local, Unix, TCP Stats
	// Greedy generation with the KV cache, per token: in-process and through the host (the
	// cache stays on the host between steps).
	GenLocal, GenHost Stats
	// The host's RSS before any model, after the first client loaded it, after every client.
	RSSBefore, RSSOne, RSSAll int64
	Clients                   int
	WeightBytes               int64
	Compiles, Hits            int
}

func childMode() string { return os.Getenv(EnvHostChild) }

// runHostChild is a cell: it prints a ChildResult with its wall time inside and peak RSS.
func runHostChild(dir, mode string) (*ChildResult, error) {
	res := &ChildResult{Backend: mode}
	if mode == "empty" {
		res.MaxRSS = maxRSS()
		return res, nil
	}
	t0 := time.Now()
	m := nnsight.LanguageModel(dir)
	if err := m.Load(); err != nil {
		return nil, err
	}
	t1 := time.Now()
	if err := Traced(m, CellShape, 2); err != nil {
		return nil, err
	}
	res.Load, res.Forward, res.Backend = t1.Sub(t0), time.Since(t1), m.Engine().Name
	if mode == "host" && !strings.Contains(res.Backend, "remote") {
		return nil, fmt.Errorf("the host child ran on %s", res.Backend)
	}
	res.MaxRSS = maxRSS()
	return res, nil
}

// maxRSS is this process's peak resident set (VmHWM: unlike getrusage's maxrss, it does not
// carry over the parent's peak across fork and exec).
func maxRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb)
			return kb * 1024
		}
	}
	return 0
}

// cellChild runs one cell stand-in and returns its wall time and report.
func cellChild(dir, mode string, env []string, args []string) (time.Duration, *ChildResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), EnvChild+"="+dir, EnvHostChild+"="+mode), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return 0, nil, fmt.Errorf("%s cell child: %v: %s", mode, err, strings.TrimSpace(errb.String()))
	}
	var res ChildResult
	if err := json.Unmarshal([]byte(lastLine(out.String())), &res); err != nil {
		return 0, nil, fmt.Errorf("%s cell child printed %q: %v", mode, out.String(), err)
	}
	return wall, &res, nil
}

// host measures the model host on the first backend.
func (r *run) host() error {
	hr, err := runHost(r.cfg, r.cfg.Backends[0])
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	r.rep.Host = hr
	return nil
}

// runHost measures the host on backend b.
func runHost(cfg Config, b string) (*HostReport, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }
	dir, err := ensureModelDirOf(cfg.HostModel, cfg.Log)
	if err != nil {
		return nil, err
	}
	var tk [16]byte
	rand.Read(tk[:])
	token := hex.EncodeToString(tk[:])
	h, err := host.New(host.Config{Backend: b, Token: token, ModelDirs: []string{filepath.Dir(dir)}})
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "gonnsight-bench-host-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	sock := filepath.Join(tmp, "host.sock")
	ul, err := host.Listen("unix:" + sock)
	if err != nil {
		return nil, err
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Serve(ctx, ul)
	go h.Serve(ctx, tl)
	rep := &HostReport{Backend: b, Model: "GPT-2 " + cmp.Or(cfg.HostModel, "small") + ", random weights", RSSBefore: h.Stats().RSSBytes}
	hostEnv := []string{remote.EnvRemote + "=unix:" + sock, remote.EnvToken + "=" + token, engine.EnvBackend + "=" + b}
	localEnv := []string{remote.EnvRemote + "=", engine.EnvBackend + "=" + b}

	logf("bench: notebook cells with and without the model host (%d reps each, interleaved)", cfg.Reps)
	var inRSS, hostRSS int64
	runs := []Runner{
		{Column: "empty", Run: func() (time.Duration, error) {
			w, _, err := cellChild(dir, "empty", localEnv, cfg.ChildArgs)
			return w, err
		}},
		{Column: "inproc", Run: func() (time.Duration, error) {
			w, r, err := cellChild(dir, "inproc", localEnv, cfg.ChildArgs)
			if r != nil {
				inRSS = r.MaxRSS
			}
			return w, err
		}},
		{Column: "host", Run: func() (time.Duration, error) {
			w, r, err := cellChild(dir, "host", hostEnv, cfg.ChildArgs)
			if r != nil {
				hostRSS = r.MaxRSS
				rep.HostLoad.Add(r.Load)
				rep.HostForward.Add(r.Forward)
				if rep.RSSOne == 0 {
					rep.RSSOne = h.Stats().RSSBytes
				}
				rep.Clients++
			}
			return w, err
		}},
	}
	cells, err := Interleave(cfg.Reps, runs)
	if err != nil {
		return nil, err
	}
	rep.Empty, rep.InProc, rep.ViaHost = cells["empty"], cells["inproc"], cells["host"]
	rep.InProcRSS, rep.ViaHostRSS = inRSS, hostRSS
	rep.RSSAll = h.Stats().RSSBytes
	rep.WeightBytes = h.Stats().WeightBytes

	logf("bench: round trip of a traced %s forward: in-process, Unix socket, loopback TCP", CellShape)
	local := nnsight.LanguageModel(dir, nnsight.WithBackend(b))
	viaUnix, err := remoteModel(dir, "unix:"+sock, token)
	if err != nil {
		return nil, err
	}
	viaTCP, err := remoteModel(dir, "http://"+tl.Addr().String(), token)
	if err != nil {
		return nil, err
	}
	trace := func(m *nnsight.Model) func() (time.Duration, error) {
		return func() (time.Duration, error) { return Time(func() error { return Traced(m, CellShape, 2) }) }
	}
	rt, err := Interleave(cfg.Reps, []Runner{{Column: "local", Run: trace(local)}, {Column: "unix", Run: trace(viaUnix)}, {Column: "tcp", Run: trace(viaTCP)}})
	if err != nil {
		return nil, err
	}
	rep.Local, rep.Unix, rep.TCP = rt["local"], rt["unix"], rt["tcp"]

	logf("bench: generation with the KV cache, in-process and through the host")
	gen := func(m *nnsight.Model) func() (time.Duration, error) {
		return func() (time.Duration, error) { return Time(func() error { return Generate(m, true) }) }
	}
	gt, err := Interleave(cfg.Reps, []Runner{{Column: "local", Run: gen(local)}, {Column: "unix", Run: gen(viaUnix)}})
	if err != nil {
		return nil, err
	}
	rep.GenLocal, rep.GenHost = gt["local"].Scale(NewTokens), gt["unix"].Scale(NewTokens)
	st := h.Stats()
	rep.Compiles, rep.Hits = st.Compiles, st.Hits
	return rep, nil
}

func remoteModel(dir, addr, token string) (*nnsight.Model, error) {
	c, err := remote.NewClient(addr, token)
	if err != nil {
		return nil, err
	}
	rb, err := remote.Dial(c)
	if err != nil {
		return nil, err
	}
	m := nnsight.LanguageModel(dir, nnsight.WithEngine(engine.New(rb, rb.String(), "bench")))
	return m, m.Load()
}

func mb(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/(1<<20)) }

// Markdown renders the host measurements.
func (r *HostReport) Markdown() string {
	e, in, vh := r.Empty.Median(), r.InProc.Median(), r.ViaHost.Median()
	rows := [][]string{
		{"new process, empty (the part of an empty cell after its link)", Millis(e), "–"},
		{"new process, load + traced " + CellShape.String() + " forward, in-process", Millis(in), Millis(in - e)},
		{"new process, the same trace through the kernel's host", Millis(vh), Millis(vh - e)},
		{"… of which: open the model on the host (config, tokenizer, weight names)", Millis(r.HostLoad.Median()), "–"},
		{"… of which: the traced forward (build, record, run on the host, outputs back)", Millis(r.HostForward.Median()), "–"},
		{"warm traced " + CellShape.String() + " forward, in-process", Millis(r.Local.Median()), "–"},
		{"warm, through the host over its Unix socket", Millis(r.Unix.Median()), signedMillis(r.Unix.Median() - r.Local.Median())},
		{"warm, through the host over loopback TCP", Millis(r.TCP.Median()), signedMillis(r.TCP.Median() - r.Local.Median())},
		{fmt.Sprintf("generation, KV cache, per token (%d after %d), in-process", NewTokens, PromptLen), Millis(r.GenLocal.Median()), "–"},
		{"generation through the host (the cache stays there)", Millis(r.GenHost.Median()), signedMillis(r.GenHost.Median() - r.GenLocal.Median())},
	}
	var b strings.Builder
	b.WriteString(Markdown([]string{"model host, " + r.Backend + ", " + r.Model + " (median)", "ms", "minus its baseline, ms"}, rows))
	b.WriteString("\n")
	mem := [][]string{
		{"host RSS before any model", mb(r.RSSBefore)},
		{"host RSS after the first client loaded the model", mb(r.RSSOne)},
		{fmt.Sprintf("host RSS after %d clients (new processes) used it", r.Clients), mb(r.RSSAll)},
		{"resident weights on the host", mb(r.WeightBytes)},
		{"peak RSS of a cell process, in-process", mb(r.InProcRSS)},
		{"peak RSS of a cell process through the host", mb(r.ViaHostRSS)},
		{"host programs compiled / cache hits", fmt.Sprintf("%d / %d", r.Compiles, r.Hits)},
	}
	b.WriteString(Markdown([]string{"memory", ""}, mem))
	return b.String()
}

func signedMillis(d time.Duration) string {
	if d < 0 {
		return "−" + Millis(-d)
	}
	return Millis(d)
}
