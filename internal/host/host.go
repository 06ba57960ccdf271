// Package host is the model host: a long-lived process that keeps models loaded (weights
// resident on its backend), compiles the programs clients send (cached by the program's
// hash) and runs them, so that a notebook cell or a remote client ships a program and its
// inputs, never weights, and never code.
//
// The wire is HTTP/1.1 with gob bodies, over a Unix socket (one per kernel session) or TCP.
// Why not gRPC: the messages are few (hello, open, run, weight, stats) and large (tensors),
// gob encodes []byte with no copy beyond the socket buffers, and net/http plus gob need no
// dependency outside the standard library (gRPC-Go would add a dozen modules to every cell's
// link). The program inside a run request has its own compact binary encoding (see
// internal/remote), because it is what the host validates byte by byte.
package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/internal/remote"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/safetensors"
	"github.com/gonnsight/gonnsight/tokenizer"
)

// Config configures a host.
type Config struct {
	Backend string // engine configuration ("" picks as engine.Open does)
	// Token is what clients must send: one token, or one "NAME TOKEN" line per user (a token
	// file's contents; '#' starts a comment). Users' kept values and sessions are their own.
	Token string
	// ModelDirs are the directories under which a client may name a local model directory;
	// hub ids resolve through the host's Hugging Face cache. Nothing else is read.
	ModelDirs []string
	// AnyModelDir lets clients name any local directory this process can read: for a private
	// host (the kernel's, whose only client is its user), never for a shared one.
	AnyModelDir bool
	Limits      remote.Limits
	// RunTimeout bounds how long the host waits for one run (0: 2 minutes).
	RunTimeout time.Duration
	// MaxConcurrent bounds the runs executing at once (0: 4); more wait their turn.
	MaxConcurrent int
	// MaxRequestBytes bounds a request body (0: 1 GiB); at most 4×MaxConcurrent requests are
	// read or served at once, so bodies take at most that many times this much memory.
	MaxRequestBytes int64
	// MaxPrograms bounds the compiled programs kept (0: 256); the least recently used go first.
	MaxPrograms int
	// Outputs larger than InlineBytes (0: 64 KiB; negative: none) stay resident on the host
	// for the client's session, which reads them on demand or feeds them to its next run (a
	// generation's cache), up to MaxResidentBytes in all (0: 4 GiB; beyond it outputs are sent
	// back). A session's values go when it has been idle for ResidentTTL (0: 10 minutes).
	// Values kept by name (nnsight.Keep) stay until replaced, up to MaxKeptBytes (0: 1 GiB).
	MaxKeptBytes     int64
	InlineBytes      int64
	MaxResidentBytes int64
	ResidentTTL      time.Duration
	Log              io.Writer
}

// Host holds models and programs and serves clients.
type Host struct {
	cfg     Config
	users   []user
	eng     *engine.Engine
	sem     chan struct{} // runs executing
	admit   chan struct{} // requests being read or served: bounds the memory their bodies take
	mu      sync.Mutex
	models  map[string]*model
	loading map[string]*sync.Mutex
	progs   map[[32]byte]*program
	tick    int64
	st      remote.Stats
	compile sync.Mutex

	vmu      sync.Mutex // guards the resident values below
	sessions map[[16]byte]*session
	nextID   uint64
	resident int64
	kept     map[string]*value // nnsight.Keep's values, for every client of the host
	keptSize int64
}

// session holds the values one client process left resident.
type session struct {
	values map[uint64]*value
	last   time.Time
}

type value struct {
	buf   compute.Buffer
	shape shapes.Shape
	bytes int64
}

type model struct {
	mu      sync.Mutex // guards weights and sums (derived weights are added on first use)
	reply   *remote.OpenReply
	weights map[string]*tensors.Tensor
	sums    map[string]uint32
	bytes   int64
}

// transposes holds the transposed copies of weights that TransposedParam parameters ask for.
var transposes module.Transposes

// weight returns a resident weight, or one derived from a resident weight (its transposed
// copy, name + module.TransposedSuffix), made once and kept beside it.
func (m *model) weight(h *Host, name string) (*tensors.Tensor, uint32, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.weights[name]; ok {
		return t, m.sums[name], true
	}
	base, isT := strings.CutSuffix(name, module.TransposedSuffix)
	src, ok := m.weights[base]
	if !isT || !ok || src.Rank() != 2 {
		return nil, 0, false
	}
	d := src.Shape().Dimensions
	t, ok, err := transposes.Feed(h.eng.Backend, name, shapes.Make(src.DType(), d[1], d[0]), func(n string) (*tensors.Tensor, bool) {
		w, ok := m.weights[n]
		return w, ok
	})
	if !ok || err != nil {
		return nil, 0, false
	}
	m.weights[name], m.sums[name] = t, m.sums[base]
	return t, m.sums[base], true
}

type program struct {
	users    int  // runs using it now (guarded by Host.mu)
	evicted  bool // out of the cache: the last user finalizes it
	exec     compute.Executable
	inNames  []string
	inShapes []shapes.Shape
	used     int64
	hits     int
}

type user struct{ name, token string }

// parseTokens reads a token file's contents: one token, or "NAME TOKEN" lines.
func parseTokens(text string) ([]user, error) {
	var users []user
	names := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if c := strings.Index(line, "#"); c >= 0 {
			line = line[:c]
		}
		f := strings.Fields(line)
		switch len(f) {
		case 0:
			continue
		case 1:
			users = append(users, user{token: f[0]})
		case 2:
			users = append(users, user{name: f[0], token: f[1]})
		default:
			return nil, fmt.Errorf("token file line %d: want TOKEN or NAME TOKEN", i+1)
		}
		u := users[len(users)-1]
		if len(u.token) < 16 {
			return nil, fmt.Errorf("token file line %d: a token of %d characters is too short to guess-proof (at least 16)", i+1, len(u.token))
		}
		if names[u.name] {
			return nil, fmt.Errorf("token file line %d: user %q twice", i+1, u.name)
		}
		names[u.name] = true
	}
	if len(users) == 0 {
		return nil, errors.New("a model host needs a token (--token-file): it runs nothing for unauthenticated clients")
	}
	return users, nil
}

// New starts a host's backend.
func New(cfg Config) (*Host, error) {
	users, err := parseTokens(cfg.Token)
	if err != nil {
		return nil, err
	}
	if cfg.RunTimeout == 0 {
		cfg.RunTimeout = 2 * time.Minute
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 4
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = 1 << 30
	}
	if cfg.MaxPrograms == 0 {
		cfg.MaxPrograms = 256
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.InlineBytes == 0 {
		cfg.InlineBytes = 64 << 10
	}
	if cfg.MaxResidentBytes == 0 {
		cfg.MaxResidentBytes = 4 << 30
	}
	if cfg.MaxKeptBytes == 0 {
		cfg.MaxKeptBytes = 1 << 30
	}
	if cfg.ResidentTTL == 0 {
		cfg.ResidentTTL = 10 * time.Minute
	}
	var dirs []string
	for _, d := range cfg.ModelDirs {
		abs, err := filepath.Abs(d)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return nil, fmt.Errorf("model directory %s: %w", d, err)
		}
		dirs = append(dirs, abs)
	}
	cfg.ModelDirs = dirs
	eng, err := engine.Open(cfg.Backend)
	if err != nil {
		return nil, err
	}
	h := &Host{cfg: cfg, eng: eng, users: users, sem: make(chan struct{}, cfg.MaxConcurrent), admit: make(chan struct{}, 4*cfg.MaxConcurrent),
		models: map[string]*model{}, loading: map[string]*sync.Mutex{}, progs: map[[32]byte]*program{},
		sessions: map[[16]byte]*session{}, kept: map[string]*value{}}
	h.st.Backend = eng.Name
	return h, nil
}

// Backend is the host's backend configuration.
func (h *Host) Backend() string { return h.eng.Name }

// Listen opens addr: "unix:/path" or an absolute path (a Unix socket, made 0600), or
// HOST:PORT (TCP).
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok || strings.HasPrefix(addr, "/") {
		if !ok {
			path = addr
		}
		if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
			// A socket left by a host that died: connecting tells whether one still listens.
			if c, err := net.Dial("unix", path); err == nil {
				c.Close()
				return nil, fmt.Errorf("a model host already listens on %s", path)
			}
			os.Remove(path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	}
	addr = strings.TrimPrefix(addr, "http://")
	return net.Listen("tcp", addr)
}

// Serve serves clients on l until ctx ends.
func (h *Host) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler is the host's HTTP API.
func (h *Host) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n")) // for supervisors' probes: says nothing about the host
	})
	handle := func(path string, fn func(r *http.Request, user string) (any, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			user, ok := h.authorized(r)
			if !ok {
				h.count(func(s *remote.Stats) { s.Refused++ })
				http.Error(w, "unauthorized: send the host's token as \"Authorization: Bearer TOKEN\"", http.StatusUnauthorized)
				return
			}
			if r.Method != http.MethodPost {
				http.Error(w, "POST only", http.StatusMethodNotAllowed)
				return
			}
			select {
			case h.admit <- struct{}{}:
				defer func() { <-h.admit }()
			case <-r.Context().Done():
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxRequestBytes)
			reply, err := h.safely(func() (any, error) { return fn(r, user) })
			if err != nil {
				status := http.StatusBadRequest
				var se *statusError
				if errors.As(err, &se) {
					status = se.status
				}
				if status != remote.StatusUnknownProgram { // the normal first contact of a new client
					h.count(func(s *remote.Stats) { s.Errors++ })
					fmt.Fprintf(h.cfg.Log, "gonnsight host: %s: %v\n", path, err)
				}
				http.Error(w, err.Error(), status)
				return
			}
			var buf bytes.Buffer
			if err := gob.NewEncoder(&buf).Encode(reply); err != nil {
				http.Error(w, "encoding the reply: "+err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/x-gob")
			w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
			w.Write(buf.Bytes())
		})
	}
	handle(remote.PathHello, func(r *http.Request, user string) (any, error) { return h.hello(), nil })
	handle(remote.PathStats, func(r *http.Request, user string) (any, error) { return h.Stats(), nil })
	handle(remote.PathOpen, func(r *http.Request, user string) (any, error) {
		var req remote.OpenRequest
		if err := gob.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, fmt.Errorf("decoding the open request: %w", err)
		}
		return h.Open(req.Source)
	})
	handle(remote.PathWeight, func(r *http.Request, user string) (any, error) {
		var req remote.WeightRequest
		if err := gob.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, fmt.Errorf("decoding the weight request: %w", err)
		}
		t, err := h.weight(req.Ref)
		if err != nil {
			return nil, err
		}
		out := remote.Tensor{DType: int(t.DType()), Dims: t.Shape().Dimensions}
		t.ConstBytes(func(b []byte) { out.Data = bytes.Clone(b) })
		return out, nil
	})
	handle(remote.PathValue, func(r *http.Request, user string) (any, error) {
		var req remote.ValueRequest
		if err := gob.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, fmt.Errorf("decoding the value request: %w", err)
		}
		v, err := h.value(userSession(user, req.Session), req.ID)
		if err != nil {
			return nil, err
		}
		return tensorOf(v.buf, v.shape)
	})
	handle(remote.PathKeep, func(r *http.Request, user string) (any, error) {
		var req remote.KeepRequest
		if err := gob.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, fmt.Errorf("decoding the keep request: %w", err)
		}
		req.Session = userSession(user, req.Session)
		return struct{}{}, h.keep1(user, &req)
	})
	handle(remote.PathKept, func(r *http.Request, user string) (any, error) {
		var req remote.KeptRequest
		if err := gob.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, fmt.Errorf("decoding the kept request: %w", err)
		}
		h.vmu.Lock()
		names := make([]string, 0, len(h.kept))
		for k := range h.kept {
			if n, ok := strings.CutPrefix(k, user+"\x00"); ok {
				names = append(names, n)
			}
		}
		v := h.kept[user+"\x00"+req.Name]
		h.vmu.Unlock()
		sort.Strings(names)
		if req.Name == "" {
			return &remote.KeptReply{Names: names}, nil
		}
		if v == nil {
			return nil, &statusError{http.StatusNotFound, fmt.Errorf("nothing kept under %q on the host; kept: %s", req.Name, strings.Join(names, ", "))}
		}
		t, err := tensorOf(v.buf, v.shape)
		if err != nil {
			return nil, err
		}
		return &remote.KeptReply{Value: t}, nil
	})
	handle(remote.PathRun, func(r *http.Request, user string) (any, error) {
		t0 := time.Now()
		defer func() { h.count(func(s *remote.Stats) { s.ServeNanos += int64(time.Since(t0)) }) }()
		var req remote.RunRequest
		if err := gob.NewDecoder(r.Body).Decode(&req); err != nil {
			return nil, fmt.Errorf("decoding the run request: %w", err)
		}
		req.Session = userSession(user, req.Session)
		return h.Run(r.Context(), &req)
	})
	return mux
}

type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// authorized returns the user whose token the request carries. Every token is compared, in
// constant time, whichever matches.
func (h *Host) authorized(r *http.Request) (string, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	name, found := "", false
	for _, u := range h.users {
		if subtle.ConstantTimeCompare([]byte(got), []byte(u.token)) == 1 && ok {
			name, found = u.name, true
		}
	}
	return name, found
}

// userSession makes a client's session id its user's own: two users never share one.
func userSession(user string, sid [16]byte) [16]byte {
	if sid == ([16]byte{}) {
		return sid
	}
	sum := sha256.Sum256(append([]byte(user+"\x00"), sid[:]...))
	var out [16]byte
	copy(out[:], sum[:16])
	return out
}

// safely turns a panic while serving one request into that request's error.
func (h *Host) safely(fn func() (any, error)) (reply any, err error) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(h.cfg.Log, "gonnsight host: panic serving a request: %v\n%s", p, debug.Stack())
			reply, err = nil, &statusError{http.StatusInternalServerError, fmt.Errorf("the host failed on this request: %v", p)}
		}
	}()
	return fn()
}

func (h *Host) count(fn func(*remote.Stats)) {
	h.mu.Lock()
	fn(&h.st)
	h.mu.Unlock()
}

func (h *Host) hello() *remote.Hello {
	caps := h.eng.Backend.Capabilities()
	hello := &remote.Hello{Backend: h.eng.Name, Functions: caps.Functions, OpsetID: remote.OpsetID(), PID: os.Getpid()}
	for op, ok := range caps.Operations {
		if ok {
			hello.Ops = append(hello.Ops, op.String())
		}
	}
	sort.Strings(hello.Ops)
	for dt, ok := range caps.DTypes {
		if ok {
			hello.DTypes = append(hello.DTypes, int(dt))
		}
	}
	sort.Ints(hello.DTypes)
	return hello
}

// Stats returns the host's counters.
func (h *Host) Stats() *remote.Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.st
	s.Models = nil
	s.WeightBytes = 0
	for k, m := range h.models {
		s.Models = append(s.Models, k)
		s.WeightBytes += m.bytes
	}
	sort.Strings(s.Models)
	s.Programs = len(h.progs)
	s.RSSBytes = rss()
	h.vmu.Lock()
	s.ResidentBytes, s.Sessions = h.resident, len(h.sessions)
	h.vmu.Unlock()
	return &s
}

// rss reads the process's resident set size (Linux; 0 elsewhere).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}

var hubIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?(@[A-Za-z0-9._-]+)?$`)

// checkSource allows hub ids, the generated tiny model, and directories inside ModelDirs.
func (h *Host) checkSource(src string) error {
	if src == "" {
		return errors.New("no model named")
	}
	looksLikePath := strings.ContainsAny(src, `\`) || strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") ||
		strings.HasPrefix(src, "~") || strings.Contains(src, "..")
	if !looksLikePath && hubIDRE.MatchString(src) {
		if _, err := os.Stat(src); err != nil { // not also a directory in the host's working directory
			return nil
		}
	}
	if h.cfg.AnyModelDir {
		return nil
	}
	abs, err := filepath.Abs(src)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err == nil {
		for _, d := range h.cfg.ModelDirs {
			if abs == d || strings.HasPrefix(abs, d+string(filepath.Separator)) {
				return nil
			}
		}
	}
	dirs := "none (start the host with --models DIR)"
	if len(h.cfg.ModelDirs) > 0 {
		dirs = strings.Join(h.cfg.ModelDirs, ", ")
	}
	return &statusError{http.StatusForbidden, fmt.Errorf("model %q: the host reads local models only under its model directories (%s), and hub ids of the form org/name", src, dirs)}
}

// Open loads a model, once; later opens find it resident.
func (h *Host) Open(src string) (*remote.OpenReply, error) {
	if err := h.checkSource(src); err != nil {
		return nil, err
	}
	h.mu.Lock()
	if m, ok := h.models[src]; ok {
		h.mu.Unlock()
		return m.reply, nil
	}
	lk, ok := h.loading[src]
	if !ok {
		lk = &sync.Mutex{}
		h.loading[src] = lk
	}
	h.mu.Unlock()
	lk.Lock()
	defer lk.Unlock()
	h.mu.Lock()
	if m, ok := h.models[src]; ok {
		h.mu.Unlock()
		return m.reply, nil
	}
	h.mu.Unlock()
	start := time.Now()
	p, err := gpt2.Load(src, h.eng.Backend)
	if err != nil {
		return nil, fmt.Errorf("loading model %q: %w", src, err)
	}
	m := &model{weights: p.Weights, sums: map[string]uint32{}}
	reply := &remote.OpenReply{Model: src, Dir: p.Dir, Ignored: p.Ignored}
	if reply.Config, err = os.ReadFile(filepath.Join(p.Dir, "config.json")); err != nil {
		return nil, err
	}
	if p.Tokenizer != nil {
		reply.Vocab, reply.Merges = p.Tokenizer.VocabJSON(), p.Tokenizer.MergesTXT()
		if g := tokenizer.GPT2(); bytes.Equal(reply.Vocab, g.VocabJSON()) && bytes.Equal(reply.Merges, g.MergesTXT()) {
			// GPT-2's own tokenizer, which every client embeds (gpt2.FromParts takes it for
			// a GPT-2-sized vocabulary without files): 1.5 MB less per cell.
			reply.Vocab, reply.Merges = nil, nil
		}
	}
	f, err := safetensors.Open(filepath.Join(p.Dir, "model.safetensors"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	crc := crc32.MakeTable(crc32.Castagnoli)
	for _, key := range f.Names() {
		name := canonicalName(key)
		if _, ok := p.Weights[name]; !ok {
			continue
		}
		b, err := f.Bytes(key)
		if err != nil {
			return nil, err
		}
		m.sums[name] = crc32.Checksum(b, crc)
	}
	for name, t := range p.Weights {
		reply.Params = append(reply.Params, remote.ParamInfo{Name: name, DType: int(t.DType()), Dims: t.Shape().Dimensions, Sum: m.sums[name]})
		m.bytes += int64(t.Shape().ByteSize())
	}
	sort.Slice(reply.Params, func(i, j int) bool { return reply.Params[i].Name < reply.Params[j].Name })
	m.reply = reply
	h.mu.Lock()
	h.models[src] = m
	h.mu.Unlock()
	fmt.Fprintf(h.cfg.Log, "gonnsight host: loaded %s from %s in %s\n", src, p.Dir, time.Since(start).Round(time.Millisecond))
	return reply, nil
}

func (h *Host) weight(ref remote.WeightRef) (*tensors.Tensor, error) {
	h.mu.Lock()
	m, ok := h.models[ref.Model]
	var names []string
	for k := range h.models {
		names = append(names, k)
	}
	h.mu.Unlock()
	if !ok {
		sort.Strings(names)
		return nil, fmt.Errorf("no model %q is loaded on the host (loaded: %s); open it first", ref.Model, strings.Join(names, ", "))
	}
	t, sum, ok := m.weight(h, ref.Name)
	if !ok {
		return nil, fmt.Errorf("model %q has no weight %q", ref.Model, ref.Name)
	}
	if sum != ref.Sum {
		return nil, fmt.Errorf("weight %q of %q: the client expects checksum %08x, the host holds %08x (the model changed on the host: load it again)", ref.Name, ref.Model, ref.Sum, sum)
	}
	return t, nil
}

// program returns the compiled program for req, compiling it on a miss.
func (h *Host) program(req *remote.RunRequest) (*program, bool, error) {
	h.mu.Lock()
	h.tick++
	p, ok := h.progs[req.Hash]
	if ok {
		p.used = h.tick
		p.hits++
		p.users++
		h.st.Hits++
	}
	h.mu.Unlock()
	if ok {
		return p, false, nil
	}
	if len(req.Program) == 0 {
		return nil, false, &statusError{remote.StatusUnknownProgram, errors.New("unknown program: send it in full")}
	}
	if sha256.Sum256(req.Program) != req.Hash {
		return nil, false, errors.New("the program does not match its hash")
	}
	h.compile.Lock()
	defer h.compile.Unlock()
	h.mu.Lock()
	p, ok = h.progs[req.Hash]
	if ok {
		p.users++
	}
	h.mu.Unlock()
	if ok {
		return p, false, nil
	}
	rep, err := remote.Replay(h.eng.Backend, req.Name, req.Program, h.cfg.Limits)
	if err != nil {
		return nil, false, fmt.Errorf("the program was refused: %w", err)
	}
	exec, err := rep.Builder.Compile()
	if err != nil {
		return nil, false, fmt.Errorf("compiling the program on %s: %w", h.eng.Name, err)
	}
	p = &program{exec: exec, inNames: rep.InputNames, inShapes: rep.InputShapes, users: 1}
	h.mu.Lock()
	h.tick++
	p.used = h.tick
	h.progs[req.Hash] = p
	h.st.Compiles++
	for len(h.progs) > h.cfg.MaxPrograms {
		var oldest [32]byte
		var t int64 = -1
		for k, q := range h.progs {
			if t < 0 || q.used < t {
				oldest, t = k, q.used
			}
		}
		if q := h.progs[oldest]; q.users == 0 {
			q.exec.Finalize()
		} else {
			q.evicted = true // a run still uses it
		}
		delete(h.progs, oldest)
	}
	h.mu.Unlock()
	return p, true, nil
}

// release ends a run's use of a program, finalizing it if it was evicted meanwhile.
func (h *Host) release(p *program) {
	h.mu.Lock()
	p.users--
	last := p.users == 0 && p.evicted
	h.mu.Unlock()
	if last {
		p.exec.Finalize()
	}
}

// Run runs a program on its inputs.
func (h *Host) Run(ctx context.Context, req *remote.RunRequest) (*remote.RunReply, error) {
	p, compiled, err := h.program(req)
	if err != nil {
		return nil, err
	}
	handedOff := false // the execution goroutine releases p once it has started
	defer func() {
		if !handedOff {
			h.release(p)
		}
	}()
	if len(req.Inputs) != len(p.inNames) {
		return nil, fmt.Errorf("the program takes %d inputs (%s), the request has %d", len(p.inNames), strings.Join(p.inNames, ", "), len(req.Inputs))
	}
	h.sweep(req.Session, req.Release)
	b := h.eng.Backend
	inputs := make([]compute.Buffer, len(req.Inputs))
	var owned []compute.Buffer
	defer func() {
		for _, buf := range owned {
			buf.Finalize()
		}
	}()
	for i, in := range req.Inputs {
		name, want := p.inNames[i], p.inShapes[i]
		switch {
		case in.Weight != nil:
			t, err := h.weight(*in.Weight)
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", name, err)
			}
			if !t.Shape().Equal(want) {
				return nil, fmt.Errorf("input %q: weight %s has shape %s, the program wants %s", name, in.Weight.Name, t.Shape(), want)
			}
			buf, err := t.Buffer(b, 0)
			if err != nil {
				return nil, err
			}
			inputs[i] = buf
		case in.Resident != 0:
			v, err := h.value(req.Session, in.Resident)
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", name, err)
			}
			if !v.shape.Equal(want) {
				return nil, fmt.Errorf("input %q: resident value %d has shape %s, the program wants %s", name, in.Resident, v.shape, want)
			}
			inputs[i] = v.buf
		case in.Value != nil:
			if err := in.Value.Check(); err != nil {
				return nil, fmt.Errorf("input %q: %w", name, err)
			}
			if !in.Value.Shape().Equal(want) {
				return nil, fmt.Errorf("input %q has shape %s, the program wants %s", name, in.Value.Shape(), want)
			}
			flat := dtypes.MakeAnySlice(want.DType, want.Size())
			copy(dtypes.UnsafeByteSliceFromAny(flat), in.Value.Data)
			buf, err := b.BufferFromFlatData(0, flat, want)
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", name, err)
			}
			owned = append(owned, buf)
			inputs[i] = buf
			h.count(func(s *remote.Stats) { s.InputBytes += int64(len(in.Value.Data)) })
		default:
			return nil, fmt.Errorf("input %q: neither a weight nor a value", name)
		}
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	done := make(chan result, 1)
	handedOff = true
	go func() {
		// The slot is held until the backend returns, even after the client stopped waiting,
		// so runs that overstay cannot pile up beyond MaxConcurrent.
		defer func() { <-h.sem }()
		defer h.release(p)
		var r result
		func() {
			defer func() {
				if x := recover(); x != nil {
					r.err = fmt.Errorf("the backend failed running the program: %v", x)
				}
			}()
			t0 := time.Now()
			r.outs, r.err = p.exec.Execute(inputs, nil, 0)
			h.count(func(s *remote.Stats) { s.ExecNanos += int64(time.Since(t0)) })
		}()
		done <- r
	}()
	timer := time.NewTimer(h.cfg.RunTimeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-done:
	case <-timer.C:
		h.abandon(done, owned, inputs)
		owned = nil // still in use by the run that goes on
		return nil, &statusError{http.StatusGatewayTimeout, fmt.Errorf("the run took longer than the host's limit of %s", h.cfg.RunTimeout)}
	case <-ctx.Done():
		h.abandon(done, owned, inputs)
		owned = nil
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, fmt.Errorf("running the program on %s: %w", h.eng.Name, r.err)
	}
	reply := &remote.RunReply{Compiled: compiled, Outputs: make([]remote.Tensor, len(r.outs))}
	// An output that is an input's buffer, or another output's (a backend may return a
	// parameter as is), is copied out and never kept or finalized: finalizing it would free a
	// resident weight or a value another output holds.
	shared := map[compute.Buffer]bool{}
	for _, in := range inputs {
		shared[in] = true
	}
	for i, buf := range r.outs {
		sh, err := buf.Shape()
		if err != nil {
			return nil, err
		}
		if shared[buf] {
			t, err := tensorOf(buf, sh)
			if err != nil {
				return nil, err
			}
			reply.Outputs[i] = *t
			continue
		}
		shared[buf] = true
		if id := h.keep(req.Session, buf, sh); id != 0 {
			reply.Outputs[i] = remote.Tensor{DType: int(sh.DType), Dims: sh.Dimensions, Resident: id}
			continue
		}
		t, err := tensorOf(buf, sh)
		buf.Finalize()
		if err != nil {
			return nil, err
		}
		reply.Outputs[i] = *t
		h.count(func(s *remote.Stats) { s.OutputBytes += int64(len(t.Data)) })
	}
	h.count(func(s *remote.Stats) { s.Runs++ })
	return reply, nil
}

// canonicalName is gpt2's mapping of checkpoint keys to parameter names (GPT2Model
// checkpoints lack the "transformer." prefix).
func canonicalName(key string) string {
	if strings.HasPrefix(key, "transformer.") || strings.HasPrefix(key, "lm_head.") {
		return key
	}
	return "transformer." + key
}

// abandon frees, once the backend returns, what a run nobody waits for any more used and made.
// Outputs that are an input's buffer (a backend may return a parameter as is) are left alone.
func (h *Host) abandon(done <-chan result, owned, inputs []compute.Buffer) {
	go func() {
		r := <-done
		shared := map[compute.Buffer]bool{}
		for _, b := range inputs {
			shared[b] = true
		}
		for _, b := range r.outs {
			if !shared[b] {
				shared[b] = true
				b.Finalize()
			}
		}
		for _, b := range owned {
			b.Finalize()
		}
	}()
}

// result is what an execution returns.
type result struct {
	outs []compute.Buffer
	err  error
}

// tensorOf copies a buffer's values out for the wire.
func tensorOf(buf compute.Buffer, sh shapes.Shape) (*remote.Tensor, error) {
	data := make([]byte, sh.ByteSize())
	flat := dtypes.UnsafeAnySliceFromBytes(unsafePointer(data), sh.DType, sh.Size())
	if err := buf.ToFlatData(flat); err != nil {
		return nil, err
	}
	return &remote.Tensor{DType: int(sh.DType), Dims: sh.Dimensions, Data: data}, nil
}

// keep makes an output resident for the session when it is larger than InlineBytes and fits
// within MaxResidentBytes (after dropping idle sessions); it returns 0 when the output is to
// be sent back instead.
func (h *Host) keep(sid [16]byte, buf compute.Buffer, sh shapes.Shape) uint64 {
	n := int64(sh.ByteSize())
	if h.cfg.InlineBytes < 0 || n <= h.cfg.InlineBytes || sid == ([16]byte{}) {
		return 0
	}
	h.vmu.Lock()
	defer h.vmu.Unlock()
	if h.resident+n > h.cfg.MaxResidentBytes {
		return 0
	}
	s := h.sessions[sid]
	if s == nil {
		s = &session{values: map[uint64]*value{}}
		h.sessions[sid] = s
	}
	s.last = time.Now()
	h.nextID++
	s.values[h.nextID] = &value{buf: buf, shape: sh, bytes: n}
	h.resident += n
	return h.nextID
}

func (h *Host) value(sid [16]byte, id uint64) (*value, error) {
	h.vmu.Lock()
	defer h.vmu.Unlock()
	s := h.sessions[sid]
	if s == nil {
		return nil, fmt.Errorf("resident value %d: this client has no values on the host (they expire after %s idle)", id, h.cfg.ResidentTTL)
	}
	s.last = time.Now()
	v := s.values[id]
	if v == nil {
		return nil, fmt.Errorf("resident value %d is not held for this client (released, or expired after %s idle)", id, h.cfg.ResidentTTL)
	}
	return v, nil
}

// sweep releases the values a client dropped and the sessions idle for longer than the TTL.
func (h *Host) sweep(sid [16]byte, release []uint64) {
	h.vmu.Lock()
	defer h.vmu.Unlock()
	if s := h.sessions[sid]; s != nil {
		s.last = time.Now()
		for _, id := range release {
			if v := s.values[id]; v != nil {
				v.buf.Finalize()
				h.resident -= v.bytes
				delete(s.values, id)
			}
		}
	}
	for k, s := range h.sessions {
		if time.Since(s.last) > h.cfg.ResidentTTL || len(s.values) == 0 && k != sid {
			for _, v := range s.values {
				v.buf.Finalize()
				h.resident -= v.bytes
			}
			delete(h.sessions, k)
		}
	}
}

var keptNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,200}$`)

// keep1 keeps a value by name: a copy of a session's resident value, or one sent with the
// request.
func (h *Host) keep1(user string, req *remote.KeepRequest) error {
	if !keptNameRE.MatchString(req.Name) {
		return fmt.Errorf("keep %q: names may use letters, digits, '_', '.' and '-'", req.Name)
	}
	var v *value
	switch {
	case req.Resident != 0:
		// A copy on the host: the session's value stays the client's to read and reuse.
		rv, err := h.value(req.Session, req.Resident)
		if err != nil {
			return fmt.Errorf("keep %q: %w", req.Name, err)
		}
		flat := dtypes.MakeAnySlice(rv.shape.DType, rv.shape.Size())
		if err := rv.buf.ToFlatData(flat); err != nil {
			return err
		}
		buf, err := h.eng.Backend.BufferFromFlatData(0, flat, rv.shape)
		if err != nil {
			return err
		}
		v = &value{buf: buf, shape: rv.shape, bytes: rv.bytes}
	case req.Value != nil:
		if err := req.Value.Check(); err != nil {
			return fmt.Errorf("keep %q: %w", req.Name, err)
		}
		sh := req.Value.Shape()
		flat := dtypes.MakeAnySlice(sh.DType, sh.Size())
		copy(dtypes.UnsafeByteSliceFromAny(flat), req.Value.Data)
		buf, err := h.eng.Backend.BufferFromFlatData(0, flat, sh)
		if err != nil {
			return err
		}
		v = &value{buf: buf, shape: sh, bytes: int64(sh.ByteSize())}
	default:
		return fmt.Errorf("keep %q: no value", req.Name)
	}
	h.vmu.Lock()
	defer h.vmu.Unlock()
	key := user + "\x00" + req.Name
	old := h.kept[key]
	size := h.keptSize + v.bytes
	if old != nil {
		size -= old.bytes
	}
	if size > h.cfg.MaxKeptBytes {
		v.buf.Finalize()
		return fmt.Errorf("keep %q: the host keeps at most %d bytes of values (%d kept)", req.Name, h.cfg.MaxKeptBytes, h.keptSize)
	}
	if old != nil {
		old.buf.Finalize()
	}
	h.kept[key], h.keptSize = v, size
	return nil
}
