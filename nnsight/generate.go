package nnsight

import (
	"fmt"
	"math"
	"math/rand"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
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
	rng := rand.New(rand.NewSource(o.seed))
	// Step 0 registers the invokes: they fix the batch's rows for every later step.
	tr0, err := m.register(prompt, fn, 0, maxNew, nil)
	if err != nil {
		return nil, fmt.Errorf("step 0: %w", err)
	}
	batch0, err := m.makeBatch(tr0)
	if err != nil {
		return nil, err
	}
	var seqs [][]int
	var masks [][]bool // the user's masks, unpadded (nil rows: all visible)
	for _, iv := range tr0.invokes {
		seqs = append(seqs, iv.ids...)
	}
	for i, row := range batch0.Mask {
		off := len(row) - batch0.Lengths[i]
		if m.opts.padRight {
			off = 0
		}
		masks = append(masks, append([]bool(nil), row[off:off+batch0.Lengths[i]]...))
	}
	longest := 0
	for _, s := range seqs {
		longest = max(longest, len(s))
	}
	if n := m.spec.MaxPositions; n > 0 && longest+maxNew > n {
		return nil, fmt.Errorf("prompt of %d tokens + %d new tokens is longer than the model's context (n_positions=%d)",
			longest, maxNew, n)
	}
	slots := m.lm.CacheSlots(len(seqs), longest+maxNew)
	if len(slots) == 0 {
		o.noCache = true // the family has no generation cache
	}
	edits := m.Edits()
	gen := &Generation{Saved: &Result{values: map[string]*tensors.Tensor{}, lists: map[string][]*tensors.Tensor{}, lm: true}}
	rows := len(seqs)
	done := make([]bool, rows)
	gen.StoppedAt = make([]bool, rows)
	newTok := make([][]int, rows)
	var gs *genState
	var cacheBatch *Batch
	var caches []*Cache
	for step := 0; step < maxNew; step++ {
		tr := tr0
		if step > 0 {
			tr, err = m.register(prompt, fn, step, maxNew, caches)
			if err != nil {
				return nil, fmt.Errorf("step %d: %w", step, err)
			}
			if len(tr.invokes) != len(tr0.invokes) {
				return nil, fmt.Errorf("step %d: the trace function made %d invokes, step 0 made %d: every step must make the same invokes",
					step, len(tr.invokes), len(tr0.invokes))
			}
			for i, iv := range tr.invokes {
				iv.rows = tr0.invokes[i].rows
			}
		}
		caches = tr.cacheObjects()
		var batch *Batch
		switch {
		case o.noCache && step > 0:
			cur := make([][]int, rows)
			curMasks := make([][]bool, rows)
			for i := range seqs {
				cur[i] = append(append([]int(nil), seqs[i]...), newTok[i]...)
				curMasks[i] = append(append([]bool(nil), masks[i]...), trues(len(newTok[i]))...)
			}
			batch, err = m.padBatch(cur, curMasks)
			if err != nil {
				return nil, err
			}
			batch.Rows = batch0.Rows
		case o.noCache || step == 0:
			batch = batch0
			if !o.noCache {
				gs, err = m.newCache(slots, longest+maxNew)
				if err != nil {
					return nil, err
				}
				// Keys beyond the prompt are valid once written (causality hides the future).
				cacheBatch = batch
				for i := range batch.Mask {
					for len(batch.Mask[i]) < longest+maxNew {
						batch.Mask[i] = append(batch.Mask[i], true)
					}
				}
			}
		default:
			batch = &Batch{Mask: cacheBatch.Mask, Rows: batch0.Rows}
			for i := range seqs {
				batch.IDs = append(batch.IDs, []int{newTok[i][len(newTok[i])-1]})
				batch.Positions = append(batch.Positions, []int{len(seqs[i]) + len(newTok[i]) - 1})
			}
		}
		var st *genState
		if !o.noCache {
			st = gs
			if step == 0 {
				st.pos = 0
			} else {
				st.pos = longest + step - 1
			}
		}
		res, err := m.execute(tr, batch, edits, st)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step, err)
		}
		if st != nil {
			st.state = st.next
		}
		for _, name := range res.order {
			gen.Saved.lists[name] = append(gen.Saved.lists[name], res.values[name])
			if _, ok := gen.Saved.values[name]; !ok {
				gen.Saved.order = append(gen.Saved.order, name)
			}
			gen.Saved.values[name] = res.values[name]
			if a, ok := res.axes[name]; ok {
				gen.Saved.setAxes(name, a)
			}
		}
		logits := res.Logits()
		if logits == nil {
			return nil, fmt.Errorf("step %d: the trace stopped before the logits", step)
		}
		last := lastLogits(logits)
		allDone := true
		stepToks := make([]int, rows)
		for i := range seqs {
			if done[i] {
				newTok[i] = append(newTok[i], m.padID())
				stepToks[i] = -1
				continue
			}
			id := pick(last[i], o, rng)
			newTok[i] = append(newTok[i], id)
			stepToks[i] = id
			if !o.noEOSStop && id == m.spec.EOSTokenID {
				done[i] = true
				gen.StoppedAt[i] = true
			}
			if !done[i] {
				allDone = false
			}
		}
		gen.Steps = step + 1
		if o.streamer != nil {
			o.streamer(step, stepToks)
		}
		if allDone {
			break
		}
	}
	for i := range seqs {
		toks := newTok[i]
		// Drop the padding appended after a row stopped.
		n := len(toks)
		if gen.StoppedAt[i] {
			for j, t := range toks {
				if t == m.spec.EOSTokenID {
					n = j + 1
					break
				}
			}
		}
		toks = toks[:n]
		gen.NewTokens = append(gen.NewTokens, toks)
		gen.Tokens = append(gen.Tokens, append(append([]int(nil), seqs[i]...), toks...))
		if m.tok != nil {
			s, _ := m.tok.Decode(toks)
			gen.Text = append(gen.Text, s)
		}
	}
	return gen, nil
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
