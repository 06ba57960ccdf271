// Package nnsight is gonnsight's public API: load a model, address any module by path, and
// trace it — read, save and overwrite inputs, outputs and labelled intermediate values,
// across several prompts at once, during generation, with gradients — compiled into one
// graph per trace (no run-time hooks). It follows nnsight's vocabulary: trace, invoke, save,
// set, skip, stop, scan, edit.
//
// Concurrency: a Model is safe for use from several goroutines. Trace, Generate, Scan,
// RunWithCache, Graph and Edits may run at the same time as each other and as LoadEdits and
// ClearEdits; each run uses the set of loaded edits as it was when the run started (a run
// never sees half of a LoadEdits). LoadEdits and ClearEdits calls are serialized, so
// concurrent LoadEdits calls each add their edits and none is lost.
package nnsight

import (
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/internal/remote"
	"github.com/gonnsight/gonnsight/module"
	"github.com/gonnsight/gonnsight/tokenizer"
)

// Model is a module tree with weights, a backend and (for language models) a tokenizer.
// It loads lazily: declaring one costs nothing until it is first used.
type Model struct {
	source string
	opts   options

	once    sync.Once
	loadErr error // set once, by the first Load; never changed after

	// mu guards the mutable state below; editsWrite serializes LoadEdits and ClearEdits
	// (a read-validate-write of the loaded edits) without blocking runs while they validate.
	mu         sync.Mutex
	editsWrite sync.Mutex
	declMu     sync.Mutex  // guards declaredAs
	restoreErr error       // restoring the edits of earlier notebook cells failed (until ClearEdits)
	pending    []edit.Spec // edits an earlier cell loaded that this cell must load again

	root      module.Module
	weights   map[string]*tensors.Tensor
	tok       *tokenizer.Tokenizer
	cfg       *gpt2.Config         // GPT-2's config, for GPT-2-only conveniences (Config, LogitLens)
	lm        module.LanguageModel // the root, when it is a language model (nil otherwise)
	spec      module.LMSpec        // lm's vocabulary, context and end-of-text token
	eng       *engine.Engine
	ignored   []string
	edits     []*edit.Edit
	loadHooks []func(*Model) error
	example   any
	random    bool

	// declaredAs maps a loaded edit whose parent path was resolved (an alias, a negative
	// index) to the edit as declared, which is how later cells find it again.
	declaredAs map[*edit.Edit]*edit.Edit
}

type options struct {
	backend  string
	weights  map[string]*tensors.Tensor
	seed     int64
	padRight bool
	engine   *engine.Engine
	example  any
	// transposedLMHead: see TransposedLMHead.
	transposedLMHead bool
	noFusion         bool
	rename           map[string]string
}

// transposes keeps the transposed copies of weights that TransposedParam parameters ask
// for (the TransposedLMHead option), shared by every model of the process.
var transposes module.Transposes

// Option configures a Model.
type Option func(*options)

// WithBackend picks a backend configuration ("go", "onnx:cpu", "xla:cuda", ...) for this model.
func WithBackend(config string) Option { return func(o *options) { o.backend = config } }

// WithEngine shares an engine (backend and compiled-program cache) between models.
func WithEngine(e *engine.Engine) Option { return func(o *options) { o.engine = e } }

// WithWeights gives the weights of a user-defined module tree, by full parameter name.
func WithWeights(w map[string]*tensors.Tensor) Option { return func(o *options) { o.weights = w } }

// WithSeed sets the seed of the random initialisation of parameters that have no weights.
func WithSeed(seed int64) Option { return func(o *options) { o.seed = seed } }

// WithExampleInput gives a user-defined model an input to build graphs with (PrintGraph,
// Explain, edit validation) before it is first traced.
func WithExampleInput(x any) Option { return func(o *options) { o.example = x } }

// TransposedLMHead makes lm_head use a transposed copy of the token embedding, made once per
// process: on CPU backends every forward after the first is faster (about 6 ms per GPT-2-small
// forward here), the first pays for the copy (about 0.6 s). Worth it for long sweeps and
// generations in one process; not for a notebook cell that runs a few traces. Logits differ
// from the default layout in the last bits (another summation order).
func TransposedLMHead() Option { return func(o *options) { o.transposedLMHead = true } }

// NoFusion keeps every module's own ops in runs. By default a run may use the backend's fused
// GELU and LayerNorm kernels (faster on CPU) in modules that no loaded edit rewrites; values
// then differ from the unfused ops in the last bits.
func NoFusion() Option { return func(o *options) { o.noFusion = true } }

// Rename gives modules other names, as nnsight's rename does: each key, a module path
// ("transformer.h") or a single module name ("mlp"), gets its value as an alias, e.g.
// Rename(map[string]string{"transformer.h": "layers", "mlp": "ffn"}). An alias is one more
// child name of every module from which its key is a path: "layers" at the root, "ffn" in
// every block. It works in every path the API takes (Trace, Invoke, Set, Skip, Graph,
// RunWithCache and its globs, an edit's parent), alongside the real names, which win where
// both exist; saved names and cache keys are spelled the way the user spelled them. Keys
// that name no module, aliases that are not one plain name or that a real child would hide
// are errors when the model loads.
func Rename(aliases map[string]string) Option {
	return func(o *options) {
		o.rename = map[string]string{}
		for k, v := range aliases {
			o.rename[k] = v
		}
	}
}

// PadRight pads batched prompts on the right instead of the left (nnsight's default is left).
func PadRight() Option { return func(o *options) { o.padRight = true } }

// LanguageModel declares a GPT-2 language model by Hugging Face hub id or local directory;
// "" is the default, gpt2.DefaultID (a small GPT-2 trained on the Brown Corpus, shipped with
// gonnsight), and gpt2.TinyID a random tiny one. Nothing is read until the model is first used.
func LanguageModel(idOrDir string, opts ...Option) *Model {
	if idOrDir == "" {
		idOrDir = gpt2.DefaultID
	}
	m := &Model{source: idOrDir}
	for _, o := range opts {
		o(&m.opts)
	}
	return m
}

// New wraps any module tree. Parameters without weights are initialised from their specs
// with a seeded generator, so the same tree and seed give the same model. A root that
// implements module.LanguageModel (another model family than GPT-2) is run on token ids like
// a LanguageModel: Trace and Invoke over prompts of ids, and Generate with its own cache.
func New(root module.Module, opts ...Option) *Model {
	m := &Model{root: root}
	for _, o := range opts {
		o(&m.opts)
	}
	m.example = m.opts.example
	return m
}

// Load loads the model now (it otherwise loads on first use) and returns any error. In a
// notebook it also restores the edits earlier cells loaded; if that fails, the error stays
// until ClearEdits.
func (m *Model) Load() error {
	if err := m.loadBase(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restoreErr
}

// ready is Load for whatever computes with the model (traces, generation, graphs, scans): it
// also fails while edits an earlier cell loaded wait to be loaded again, since computing
// without them would silently give another model's numbers.
func (m *Model) ready() error {
	if err := m.Load(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return pendingError(m.pending)
}

// loadBase loads the model once, without the state ClearEdits can reset.
func (m *Model) loadBase() error {
	m.once.Do(func() {
		m.loadErr = m.load()
		if m.loadErr != nil {
			return
		}
		edits, pending, err := sessionRestoreEdits(m)
		m.mu.Lock()
		m.edits, m.pending, m.restoreErr = edits, pending, err
		m.mu.Unlock()
	})
	return m.loadErr
}

// setExample remembers the last input of a user-defined model, to build graphs with.
func (m *Model) setExample(x any) {
	m.mu.Lock()
	m.example = x
	m.mu.Unlock()
}

func (m *Model) load() error {
	eng := m.opts.engine
	if eng == nil {
		var err error
		if m.opts.backend != "" {
			eng, err = engine.Open(m.opts.backend)
		} else {
			eng, err = engine.Default()
		}
		if err != nil {
			return err
		}
	}
	m.eng = eng
	if m.random {
		w, err := initWeights(m.root, nil, m.opts.seed, eng.Backend)
		if err != nil {
			return err
		}
		m.weights = w
		if m.cfg.VocabSize == 50257 {
			m.tok = tokenizer.GPT2()
		}
	} else if rb, ok := eng.Backend.(*remote.Backend); ok && m.root == nil {
		p, err := openOnHost(rb, m.source)
		if err != nil {
			return fmt.Errorf("loading model %q on the model host: %w", m.source, err)
		}
		m.root, m.weights, m.tok, m.ignored = p.Model, p.Weights, p.Tokenizer, p.Ignored
		cfg := p.Config
		m.cfg = &cfg
	} else if m.root == nil {
		p, err := gpt2.Load(m.source, eng.Backend)
		if err != nil {
			return fmt.Errorf("loading model %q: %w", m.source, err)
		}
		m.root, m.weights, m.tok, m.ignored = p.Model, p.Weights, p.Tokenizer, p.Ignored
		cfg := p.Config
		m.cfg = &cfg
	} else {
		w, err := initWeights(m.root, m.opts.weights, m.opts.seed, eng.Backend)
		if err != nil {
			return err
		}
		m.weights = w
	}
	if lm, ok := m.root.(module.LanguageModel); ok {
		m.lm, m.spec = lm, lm.LMSpec()
	}
	if len(m.opts.rename) > 0 {
		if err := (module.Names{Root: m.root, Aliases: m.opts.rename}).Check(); err != nil {
			return fmt.Errorf("nnsight.Rename: %w", err)
		}
	}
	for _, h := range m.loadHooks {
		if err := h(m); err != nil {
			return err
		}
	}
	return nil
}

// initWeights fills in the parameters that have no given weight.
func initWeights(root module.Module, given map[string]*tensors.Tensor, seed int64, b compute.Backend) (map[string]*tensors.Tensor, error) {
	w := map[string]*tensors.Tensor{}
	shapes := map[string]module.ParamSpec{}
	var names []string
	var walk func(prefix string, mod module.Module)
	walk = func(prefix string, mod module.Module) {
		for _, p := range module.ParamsOf(mod) {
			name := module.Join(prefix, p.Name)
			shapes[name] = p
			names = append(names, name)
		}
		for _, ch := range module.ChildrenOf(mod) {
			walk(module.Join(prefix, ch.Name), ch.Module)
		}
	}
	walk("", root)
	for name, t := range given {
		spec, ok := shapes[name]
		if !ok {
			return nil, fmt.Errorf("weight %q does not match any parameter; parameters: %s", name, strings.Join(names, ", "))
		}
		if !slices.Equal(t.Shape().Dimensions, spec.Shape) {
			return nil, fmt.Errorf("weight %q has shape %v but the module declares %v", name, t.Shape().Dimensions, spec.Shape)
		}
		w[name] = t
	}
	rng := rand.New(rand.NewSource(seed))
	for _, name := range names {
		if _, ok := w[name]; ok {
			continue
		}
		spec := shapes[name]
		n := 1
		for _, d := range spec.Shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			switch spec.Init.Kind {
			case "ones":
				data[i] = 1
			case "value":
				data[i] = float32(spec.Init.Value)
			case "normal":
				data[i] = float32(rng.NormFloat64() * spec.Init.Std)
			}
		}
		t, err := gpt2.ToBackend(b, data, spec.Shape)
		if err != nil {
			return nil, err
		}
		w[name] = t
	}
	return w, nil
}

// Root returns the module tree (loading the model if needed).
func (m *Model) Root() (module.Module, error) {
	if err := m.Load(); err != nil {
		return nil, err
	}
	return m.root, nil
}

// Tokenizer returns the model's tokenizer (nil for models without one).
func (m *Model) Tokenizer() *tokenizer.Tokenizer { m.Load(); return m.tok }

// Config returns the GPT-2 config (GPT-2 only; nil for other families and user-defined trees).
func (m *Model) Config() *gpt2.Config { m.Load(); return m.cfg }

// Engine returns the engine running this model.
func (m *Model) Engine() *engine.Engine { m.Load(); return m.eng }

// Backend says which backend runs the model and why.
func (m *Model) Backend() string {
	if err := m.Load(); err != nil {
		return "not loaded: " + err.Error()
	}
	return m.eng.Name + " (" + m.eng.Reason + ")"
}

// Weights returns the parameters by full name.
func (m *Model) Weights() map[string]*tensors.Tensor { m.Load(); return m.weights }

// Source is the hub id or directory the model was declared with.
func (m *Model) Source() string { return m.source }

// Paths lists every module path, including the wrappers of loaded edits and everything
// under them.
func (m *Model) Paths() []string {
	if m.Load() != nil {
		return nil
	}
	return pathsWith(m.root, m.Edits())
}

// pathsWith lists the paths of root and of the wrappers of edits, with their subtrees.
func pathsWith(root module.Module, edits []*edit.Edit) []string {
	paths := module.Paths(root)
	for _, e := range edits {
		for _, p := range module.Paths(e.Module) {
			paths = append(paths, module.Join(e.WrapperPath(), p))
		}
	}
	return paths
}

// findModule returns the module at path in root's tree or under an edit's wrapper.
func findModule(root module.Module, edits []*edit.Edit, path string) (module.Module, error) {
	path = module.NormalizePath(path)
	mod, err := module.Find(root, path)
	if err == nil {
		return mod, nil
	}
	for _, e := range edits {
		w := e.WrapperPath()
		if path == w {
			return e.Module, nil
		}
		if rest, ok := strings.CutPrefix(path, w+"."); ok {
			mod, werr := module.Find(e.Module, rest)
			if werr != nil {
				return nil, fmt.Errorf("no module %q under the wrapper %q of edit %s: %w", path, w, e, werr)
			}
			return mod, nil
		}
	}
	return nil, err
}

// String prints the module tree like PyTorch, with repeated children folded
// ("(h): 0-11 x GPT2Block") and loaded edits marked.
func (m *Model) String() string {
	if err := m.Load(); err != nil {
		return fmt.Sprintf("nnsight.Model(%q: %v)", m.source, err)
	}
	return m.TreeString(false)
}

// TreeString prints the module tree; withShapes adds every parameter's shape.
func (m *Model) TreeString(withShapes bool) string {
	if err := m.Load(); err != nil {
		return err.Error()
	}
	extra := map[string][]module.Child{}
	for _, e := range m.Edits() {
		extra[e.Parent] = append(extra[e.Parent], module.Child{Name: e.Wrapper, Module: e.Module})
	}
	tree := module.Tree(m.root, extra, withShapes)
	if alt := module.AltPaths(m.root); len(alt) > 0 {
		tree += "\n" + foldHookNames(alt)
	}
	return tree
}

// foldHookNames prints other names (TransformerLens's) once per layer pattern, wrapped:
// "TransformerLens names (paths too; L = 0-11): hook_embed, blocks.L.hook_resid_pre, ...".
func foldHookNames(names []string) string {
	var folded []string
	seen := map[string]bool{}
	lo, hi := -1, -1
	for _, n := range names {
		segs := strings.Split(n, ".")
		for i, s := range segs {
			if k, err := strconv.Atoi(s); err == nil {
				segs[i] = "L"
				if lo < 0 || k < lo {
					lo = k
				}
				hi = max(hi, k)
			}
		}
		if f := strings.Join(segs, "."); !seen[f] {
			seen[f] = true
			folded = append(folded, f)
		}
	}
	head := "TransformerLens names (paths too"
	if hi >= 0 {
		head += fmt.Sprintf("; L = %d-%d", lo, hi)
	}
	var b strings.Builder
	line := head + "):"
	for i, f := range folded {
		word := " " + f
		if i < len(folded)-1 {
			word += ","
		}
		if len(line)+len(word) > 100 {
			b.WriteString(line + "\n")
			line = "  "
			word = strings.TrimPrefix(word, " ")
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}

// Edits lists the loaded edits.
func (m *Model) Edits() []*edit.Edit {
	m.loadBase() // in a notebook, loading restores the edits earlier cells loaded
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*edit.Edit(nil), m.edits...)
}

// LoadEdits activates edits for every later trace and generation, until ClearEdits. Each is
// checked against the model first (the target node exists, the wrapper name is free, the
// wrapper keeps the shape); nothing is loaded if any fails. In a notebook the set of loaded
// edits also persists to later cells (see Session).
func (m *Model) LoadEdits(edits ...*edit.Edit) error {
	if err := m.Load(); err != nil {
		return err
	}
	for i, e := range edits {
		if e == nil {
			return fmt.Errorf("LoadEdits: edit %d is nil", i)
		}
	}
	m.editsWrite.Lock()
	defer m.editsWrite.Unlock()
	all := m.Edits()
	m.mu.Lock()
	pending := append([]edit.Spec(nil), m.pending...)
	m.mu.Unlock()
	for _, e := range edits {
		var err error
		if pending, err = loadedAgain(e.Spec(), pending); err != nil {
			return err
		}
		r, err := m.resolveEdit(e, all)
		if err != nil {
			return err
		}
		all = append(all, r)
	}
	if err := m.validateEdits(all); err != nil {
		return err
	}
	m.mu.Lock()
	m.edits, m.pending = all, pending
	m.mu.Unlock()
	return sessionSaveEdits(m, all, pending)
}

// loadedAgain removes s from the edits an earlier cell loaded and this cell must load again;
// loading another edit at the same place while one waits is an error saying what differs.
func loadedAgain(s edit.Spec, pending []edit.Spec) ([]edit.Spec, error) {
	for i, p := range pending {
		if p == s {
			return append(pending[:i:i], pending[i+1:]...), nil
		}
		if p.SamePlace(s) {
			return nil, module.NewError(ErrBadEdit, "an earlier cell loaded the edit %s, but this cell loads it %s; "+
				"run model.ClearEdits() first to replace it", p, p.Differences(s))
		}
	}
	return pending, nil
}

// ClearEdits removes every loaded edit. It works even when restoring the edits of earlier
// notebook cells is what failed.
func (m *Model) ClearEdits() error {
	if err := m.loadBase(); err != nil {
		return err
	}
	m.editsWrite.Lock()
	defer m.editsWrite.Unlock()
	m.mu.Lock()
	m.edits, m.pending, m.restoreErr = nil, nil, nil
	m.mu.Unlock()
	return sessionSaveEdits(m, nil, nil)
}

func (m *Model) validateEdits(all []*edit.Edit) error {
	seen := map[string]bool{}
	for _, e := range all {
		if seen[e.WrapperPath()] {
			return module.NewError(ErrBadEdit, "edit %s: wrapper name %q is already used in %q", e, e.Wrapper, e.Parent)
		}
		seen[e.WrapperPath()] = true
	}
	for i, e := range all {
		others := append(append([]*edit.Edit(nil), all[:i]...), all[i+1:]...)
		if _, err := findModule(m.root, others, e.WrapperPath()); err == nil {
			return module.NewError(ErrBadEdit, "edit %s: %q already has a child called %q", e, e.Parent, e.Wrapper)
		}
		if _, err := findModule(m.root, others, e.Parent); err != nil {
			return module.WithKind(fmt.Errorf("edit %s: %w", e, err), ErrBadEdit)
		}
	}
	// A dry build checks that each target node exists, each wrapper keeps its shape and
	// each edit changes what the model computes.
	if m.sampleInput() == nil {
		return nil // checked at the first trace
	}
	_, err := m.scanWith(all, nil, func(t *Tracer) {})
	return err
}

// resolveEdit returns e with its parent path resolved (aliases, negative indices) to the
// model's own path, which the graph build matches calls against.
func (m *Model) resolveEdit(e *edit.Edit, earlier []*edit.Edit) (*edit.Edit, error) {
	names := m.namesWith(earlier)
	parent, _, err := names.Find(e.Parent) // a parent may sit under an earlier edit's wrapper
	if err != nil {
		return nil, module.WithKind(fmt.Errorf("edit %s: %w", e, err), ErrBadEdit)
	}
	// The node may be another name of a label (TransformerLens's hook_pattern: attn_weights).
	target := e.Target
	if mod, rest, err := names.Resolve(module.Join(parent, e.Target)); err == nil && mod == parent &&
		rest != "" && !strings.Contains(rest, ".") && rest != "input" {
		target = rest
	}
	if parent == e.Parent && target == e.Target {
		return e, nil
	}
	r := *e
	r.Parent, r.Target = parent, target
	m.declMu.Lock()
	if m.declaredAs == nil {
		m.declaredAs = map[*edit.Edit]*edit.Edit{}
	}
	m.declaredAs[&r] = e
	m.declMu.Unlock()
	return &r, nil
}

// declared is the edit as the user declared it (before resolveEdit).
func (m *Model) declared(e *edit.Edit) *edit.Edit {
	m.declMu.Lock()
	defer m.declMu.Unlock()
	if d, ok := m.declaredAs[e]; ok {
		return d
	}
	return e
}

// names resolves the paths users write against the model's tree (its aliases, and the
// wrappers of loaded edits when withEdits).
func (m *Model) names(withEdits bool) module.Names {
	if withEdits {
		return m.namesWith(m.Edits())
	}
	return m.namesWith(nil)
}

// namesWith is names with the wrappers of the given edits (no m.Edits(): usable while loading).
func (m *Model) namesWith(edits []*edit.Edit) module.Names {
	n := module.Names{Root: m.root, Aliases: m.opts.rename}
	if len(edits) > 0 {
		n.Extra = map[string][]module.Child{}
		for _, e := range edits {
			n.Extra[e.Parent] = append(n.Extra[e.Parent], module.Child{Name: e.Wrapper, Module: e.Module})
		}
	}
	return n
}

// Resolve returns the model's own path for a path as users may write it: with brackets
// ("transformer.h[3]"), negative list indices ("transformer.h[-1]", the last block) and
// aliases (Rename). A last segment that is not a module is kept as is (a labelled value,
// checked when a trace reaches it); any other unknown name or an index out of range is an
// error (ErrUnknownPath, ErrOutOfRange).
func (m *Model) Resolve(path string) (string, error) {
	if err := m.Load(); err != nil {
		return "", err
	}
	n := m.names(true)
	mod, rest, err := n.Resolve(path)
	if err != nil {
		return "", err
	}
	if rest != "" && (mod == "" || strings.Contains(rest, ".")) {
		_, _, err := n.Find(path)
		return "", err
	}
	return module.Join(mod, rest), nil
}

// Fn1 makes a module from a function of one value (for edits and Skip).
func Fn1(name string, fn func(x *Node) *Node) module.Module { return module.Fn1(name, fn) }

// RandomLanguageModel is a GPT-2 with the given config and random weights (N(0, 0.02), as
// Hugging Face initialises them) and GPT-2's tokenizer when the vocabulary is GPT-2's: for
// benchmarks and tests where real weights are not needed.
func RandomLanguageModel(cfg gpt2.Config, seed int64, opts ...Option) *Model {
	m := &Model{source: fmt.Sprintf("random GPT-2 (%d layers, %d wide, seed %d)", cfg.NLayer, cfg.NEmbd, seed)}
	for _, o := range opts {
		o(&m.opts)
	}
	m.loadHooks = nil
	m.root = gpt2.New(cfg)
	c := cfg
	m.cfg = &c
	m.opts.seed = seed
	m.random = true
	return m
}

// HookNames lists the other names the model's points answer to, in forward order: for
// GPT-2, TransformerLens's hook names ("hook_embed", "blocks.0.hook_resid_pre",
// "blocks.0.attn.hook_z", ...). Each works wherever a path does.
func (m *Model) HookNames() []string {
	if m.Load() != nil {
		return nil
	}
	return module.AltPaths(m.root)
}
