package nnsight

import (
	"fmt"
	"math"
	"math/rand"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/module"
)

// GenOption configures Generate.
type GenOption func(*genOptions)

type genOptions struct {
	temperature float64
	topK        int
	seed        int64
	noCache     bool
	noEOSStop   bool
	streamer    func(step int, tokens []int)
}

// Streamer calls fn after each generation step with the token each row chose (-1 for a row
// that already stopped at the end-of-text token): print text as it is generated.
func Streamer(fn func(step int, tokens []int)) GenOption {
	return func(o *genOptions) { o.streamer = fn }
}

// Temperature samples with the given temperature (0 = greedy, the default).
func Temperature(t float64) GenOption { return func(o *genOptions) { o.temperature = t } }

// TopK samples among the k most likely tokens.
func TopK(k int) GenOption { return func(o *genOptions) { o.topK = k } }

// Seed seeds sampling (same seed, same tokens).
func Seed(s int64) GenOption { return func(o *genOptions) { o.seed = s } }

// NoCache recomputes the whole prefix at every step instead of using the KV cache. An
// intervention at step i then acts on every position of that step's forward, not only
// the new one.
func NoCache() GenOption { return func(o *genOptions) { o.noCache = true } }

// IgnoreEOS keeps generating after the end-of-text token.
func IgnoreEOS() GenOption { return func(o *genOptions) { o.noEOSStop = true } }

// Generation is the result of Generate.
type Generation struct {
	Tokens    [][]int  // prompt + new tokens, per prompt
	NewTokens [][]int  // new tokens only
	Text      []string // decoded new tokens (when the model has a tokenizer)
	StoppedAt []bool   // whether EOS ended the row
	Steps     int
	// Saved holds values saved at each step; List(name) gives them in step order.
	Saved *Result
}

// Generate continues prompt (a string, []string, token ids or Tokens; nil when fn makes
// invokes) by up to maxNew tokens. fn, if not nil, is called once per step with a Tracer
// whose Step() says which step it is (0 = the forward over the prompt; Iter and All select
// steps): interventions registered there act on that step, and values saved there are
// collected per step (Saved.List(name)). Invokes made at step 0 fix the batch's rows: each
// invoke's interventions act on its own rows at every step, and every step must make the
// same invokes (their inputs are read at step 0 only).
//
// With the KV cache (the default) a step's forward computes only the new position, so an
// intervention at step i > 0 acts on that position only, as with Hugging Face's cache;
// NoCache() recomputes every position at every step.
func (m *Model) Generate(prompt any, maxNew int, fn func(t *Tracer), opts ...GenOption) (*Generation, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	if m.lm == nil {
		return nil, fmt.Errorf("Generate needs a language model (a root module that implements module.LanguageModel, as GPT-2 does); %s's root is a %s", m.describe(), module.TypeName(m.root))
	}
	if maxNew <= 0 {
		return nil, fmt.Errorf("max new tokens must be positive, got %d", maxNew)
	}
	var o genOptions
	for _, f := range opts {
		f(&o)
	}
	g, err := m.startGeneration(prompt, fn, maxNew, o)
	if err != nil {
		return nil, err
	}
	var caches []*Cache
	for step := 0; step < maxNew; step++ {
		tr := g.tr0
		if step > 0 {
			if tr, err = g.register(step, caches); err != nil {
				return nil, err
			}
		}
		caches = tr.cacheObjects()
		batch, err := g.batch(step)
		if err != nil {
			return nil, err
		}
		var st *genState
		if !g.o.noCache {
			st = g.cache
			st.pos = 0
			if step > 0 {
				st.pos = g.longest + step - 1
			}
		}
		res, err := m.execute(tr, batch, g.edits, st)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step, err)
		}
		if st != nil {
			st.state = st.next
		}
		g.collect(res)
		logits := res.Logits()
		if logits == nil {
			return nil, fmt.Errorf("step %d: the trace stopped before the logits", step)
		}
		allDone := g.pickNext(step, lastLogits(logits))
		if allDone {
			break
		}
	}
	return g.finish(), nil
}

// generation is the state of one Generate call between its steps.
type generation struct {
	m        *Model
	prompt   any
	fn       func(t *Tracer)
	maxNew   int
	o        genOptions
	rng      *rand.Rand
	tr0      *trace // step 0's registration: its invokes fix the batch's rows for every step
	batch0   *Batch
	seqs     [][]int  // the prompts' ids, one per row
	masks    [][]bool // the user's masks, unpadded (nil rows: all visible)
	longest  int
	slots    []module.CacheSlot
	edits    []*edit.Edit
	cache    *genState // the KV cache (nil without one)
	cacheMsk [][]bool  // with a cache: the attention mask over every key position
	done     []bool
	newTok   [][]int
	out      *Generation
}

func (m *Model) startGeneration(prompt any, fn func(t *Tracer), maxNew int, o genOptions) (*generation, error) {
	g := &generation{m: m, prompt: prompt, fn: fn, maxNew: maxNew, o: o, rng: rand.New(rand.NewSource(o.seed))}
	var err error
	if g.tr0, err = m.register(prompt, fn, 0, maxNew, nil); err != nil {
		return nil, fmt.Errorf("step 0: %w", err)
	}
	if g.batch0, err = m.makeBatch(g.tr0); err != nil {
		return nil, err
	}
	for _, iv := range g.tr0.invokes {
		g.seqs = append(g.seqs, iv.ids...)
	}
	for i, row := range g.batch0.Mask {
		off := len(row) - g.batch0.Lengths[i]
		if m.opts.padRight {
			off = 0
		}
		g.masks = append(g.masks, append([]bool(nil), row[off:off+g.batch0.Lengths[i]]...))
	}
	for _, s := range g.seqs {
		g.longest = max(g.longest, len(s))
	}
	if n := m.spec.MaxPositions; n > 0 && g.longest+maxNew > n {
		return nil, fmt.Errorf("prompt of %d tokens + %d new tokens is longer than the model's context (n_positions=%d)",
			g.longest, maxNew, n)
	}
	g.slots = m.lm.CacheSlots(len(g.seqs), g.longest+maxNew)
	if len(g.slots) == 0 {
		g.o.noCache = true // the family has no generation cache
	}
	g.edits = m.Edits()
	rows := len(g.seqs)
	g.out = &Generation{Saved: &Result{values: map[string]*tensors.Tensor{}, lists: map[string][]*tensors.Tensor{}, lm: true},
		StoppedAt: make([]bool, rows)}
	g.done = make([]bool, rows)
	g.newTok = make([][]int, rows)
	return g, nil
}

// register runs the trace function again for a later step; it must make step 0's invokes.
func (g *generation) register(step int, caches []*Cache) (*trace, error) {
	tr, err := g.m.register(g.prompt, g.fn, step, g.maxNew, caches)
	if err != nil {
		return nil, fmt.Errorf("step %d: %w", step, err)
	}
	if len(tr.invokes) != len(g.tr0.invokes) {
		return nil, fmt.Errorf("step %d: the trace function made %d invokes, step 0 made %d: every step must make the same invokes",
			step, len(tr.invokes), len(g.tr0.invokes))
	}
	for i, iv := range tr.invokes {
		iv.rows = g.tr0.invokes[i].rows
	}
	return tr, nil
}

// batch is a step's input: the prompts at step 0; then, with a cache, each row's last new
// token; without one, the prompts and every new token again.
func (g *generation) batch(step int) (*Batch, error) {
	switch {
	case g.o.noCache && step > 0:
		cur := make([][]int, len(g.seqs))
		curMasks := make([][]bool, len(g.seqs))
		for i := range g.seqs {
			cur[i] = append(append([]int(nil), g.seqs[i]...), g.newTok[i]...)
			curMasks[i] = append(append([]bool(nil), g.masks[i]...), trues(len(g.newTok[i]))...)
		}
		batch, err := g.m.padBatch(cur, curMasks)
		if err != nil {
			return nil, err
		}
		batch.Rows = g.batch0.Rows
		return batch, nil
	case g.o.noCache || step == 0:
		batch := g.batch0
		if !g.o.noCache {
			var err error
			if g.cache, err = g.m.newCache(g.slots, g.longest+g.maxNew); err != nil {
				return nil, err
			}
			// Keys beyond the prompt are valid once written (causality hides the future).
			for i := range batch.Mask {
				for len(batch.Mask[i]) < g.longest+g.maxNew {
					batch.Mask[i] = append(batch.Mask[i], true)
				}
			}
			g.cacheMsk = batch.Mask
		}
		return batch, nil
	default:
		batch := &Batch{Mask: g.cacheMsk, Rows: g.batch0.Rows}
		for i := range g.seqs {
			batch.IDs = append(batch.IDs, []int{g.newTok[i][len(g.newTok[i])-1]})
			batch.Positions = append(batch.Positions, []int{len(g.seqs[i]) + len(g.newTok[i]) - 1})
		}
		return batch, nil
	}
}

// collect adds a step's saved values to the per-step lists (and keeps the last as the value).
func (g *generation) collect(res *Result) {
	saved := g.out.Saved
	for _, name := range res.order {
		saved.lists[name] = append(saved.lists[name], res.values[name])
		if _, ok := saved.values[name]; !ok {
			saved.order = append(saved.order, name)
		}
		saved.values[name] = res.values[name]
		if a, ok := res.axes[name]; ok {
			saved.setAxes(name, a)
		}
	}
}

// pickNext picks each row's next token from the last position's logits and reports whether
// every row has stopped.
func (g *generation) pickNext(step int, last [][]float32) bool {
	allDone := true
	stepToks := make([]int, len(g.seqs))
	for i := range g.seqs {
		if g.done[i] {
			g.newTok[i] = append(g.newTok[i], g.m.padID())
			stepToks[i] = -1
			continue
		}
		id := pick(last[i], g.o, g.rng)
		g.newTok[i] = append(g.newTok[i], id)
		stepToks[i] = id
		if !g.o.noEOSStop && id == g.m.spec.EOSTokenID {
			g.done[i] = true
			g.out.StoppedAt[i] = true
		}
		if !g.done[i] {
			allDone = false
		}
	}
	g.out.Steps = step + 1
	if g.o.streamer != nil {
		g.o.streamer(step, stepToks)
	}
	return allDone
}

// finish fills the tokens and texts, without the padding appended after a row stopped.
func (g *generation) finish() *Generation {
	for i := range g.seqs {
		toks := g.newTok[i]
		n := len(toks)
		if g.out.StoppedAt[i] {
			for j, t := range toks {
				if t == g.m.spec.EOSTokenID {
					n = j + 1
					break
				}
			}
		}
		toks = toks[:n]
		g.out.NewTokens = append(g.out.NewTokens, toks)
		g.out.Tokens = append(g.out.Tokens, append(append([]int(nil), g.seqs[i]...), toks...))
		if g.m.tok != nil {
			s, _ := g.m.tok.Decode(toks)
			g.out.Text = append(g.out.Text, s)
		}
	}
	return g.out
}

func trues(n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = true
	}
	return out
}

func (m *Model) padID() int {
	if m.spec.EOSTokenID >= 0 && m.spec.EOSTokenID < m.spec.VocabSize {
		return m.spec.EOSTokenID
	}
	return 0
}

// newCache makes the family's cache slots, zeros, on the backend.
func (m *Model) newCache(slots []module.CacheSlot, maxLen int) (*genState, error) {
	gs := &genState{slots: slots, maxLen: maxLen}
	for _, sl := range slots {
		t, err := tensors.FromRaw(m.eng.Backend, 0, sl.Shape, make([]byte, sl.Shape.ByteSize()))
		if err != nil {
			return nil, fmt.Errorf("making the generation cache's %s (%s) on backend %s: %w", sl.Name, sl.Shape, m.eng.Name, err)
		}
		gs.state = append(gs.state, t)
	}
	return gs, nil
}

// lastLogits returns each row's logits at the last position.
func lastLogits(t *tensors.Tensor) [][]float32 {
	dims := t.Shape().Dimensions
	b, s, v := dims[0], dims[1], dims[2]
	var out [][]float32
	if t.DType() != dtypes.Float32 {
		return nil
	}
	data := tensors.MustCopyFlatData[float32](t)
	for i := 0; i < b; i++ {
		off := (i*s + s - 1) * v
		out = append(out, data[off:off+v])
	}
	return out
}

// pick chooses the next token: argmax, or a sample with temperature and top-k.
func pick(logits []float32, o genOptions, rng *rand.Rand) int {
	if o.temperature <= 0 {
		best := 0
		for i, x := range logits {
			if x > logits[best] {
				best = i
			}
		}
		return best
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	if o.topK > 0 && o.topK < len(idx) {
		sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
		idx = idx[:o.topK]
	}
	maxL := math.Inf(-1)
	for _, i := range idx {
		maxL = math.Max(maxL, float64(logits[i]))
	}
	probs := make([]float64, len(idx))
	sum := 0.0
	for j, i := range idx {
		probs[j] = math.Exp((float64(logits[i]) - maxL) / o.temperature)
		sum += probs[j]
	}
	r := rng.Float64() * sum
	for j, p := range probs {
		r -= p
		if r <= 0 {
			return idx[j]
		}
	}
	return idx[len(idx)-1]
}

// genState is the generation cache between the steps of Generate, in the model family's
// layout (module.LanguageModel.CacheSlots).
type genState struct {
	slots  []module.CacheSlot
	state  []*tensors.Tensor // the slots' values, as the last step left them
	maxLen int
	pos    int
	next   []*tensors.Tensor // what the step that ran wrote
	// skippedAt[i] is the first step whose forward did not write slot i (a Skip of the
	// module that writes it), or -1.
	skippedAt []int
}

// checkWritten handles slots a Skip kept from being written: they pass through unchanged,
// which is right only while every later step skips them too; a later step that reads the
// positions never written is an error, not a silent change.
func (gs *genState) checkWritten(state, updates []*Node, step int) ([]*Node, error) {
	if len(updates) != len(gs.slots) {
		return nil, fmt.Errorf("the model's CacheUpdates returned %d values for its %d cache slots", len(updates), len(gs.slots))
	}
	if gs.skippedAt == nil {
		gs.skippedAt = make([]int, len(gs.slots))
		for i := range gs.skippedAt {
			gs.skippedAt[i] = -1
		}
	}
	out := make([]*Node, len(updates))
	for i, u := range updates {
		if u == nil {
			out[i] = state[i]
			if gs.skippedAt[i] < 0 {
				gs.skippedAt[i] = step
			}
			continue
		}
		if at := gs.skippedAt[i]; at >= 0 {
			return nil, fmt.Errorf("with the generation cache, %s was not written at step %d (a Skip kept the module that "+
				"writes it from running), so it holds nothing for the positions of that step, and step %d reads them: skip "+
				"it at every step, or generate with NoCache() (each step then recomputes every position)", gs.slots[i].Name, at, step)
		}
		if !u.Shape().Equal(gs.slots[i].Shape) {
			return nil, fmt.Errorf("cache slot %s: the forward wrote shape %s, the slot is %s", gs.slots[i].Name, u.Shape(), gs.slots[i].Shape)
		}
		out[i] = u
	}
	return out, nil
}
