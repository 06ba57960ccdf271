// Package train trains a small GPT-2 from scratch with gonnsight's own module tree on
// GoMLX: a byte-level BPE vocabulary learnt from the corpus, AdamW in the graph, seeded
// batches, checkpoints that a rerun resumes from, and a model directory in Hugging Face's
// layout that nnsight.LanguageModel loads. It is what `gonnsight train` runs.
package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/safetensors"
	"github.com/gonnsight/gonnsight/tokenizer"
)

// Options configure a training run. Everything that changes the result is in here, and a
// checkpoint is resumed only by a run with the same options.
type Options struct {
	Vocab               int     // BPE vocabulary size, <|endoftext|> included
	Layers, Heads, Embd int     // GPT-2's n_layer, n_head, n_embd
	Ctx                 int     // n_positions: the training context
	Batch, Steps        int     // rows per step, optimiser steps
	LR, MinLR           float64 // peak and final learning rate (cosine decay)
	Warmup              int     // steps of linear warm-up
	Repeat              float64 // fraction of rows that repeat a segment (induction)
	InductionSteps      int     // the first steps, every row repeats a segment
	SegMin, SegMax      int     // repeated segments are SegMin to SegMax tokens long
	// Once makes a repeated row text with one segment and its copy in it (Mix.Once): the
	// in-context unigram pays less there than in a row that repeats one segment throughout.
	Once        bool `json:",omitempty"`
	WeightDecay float64
	// NoPositionDecay exempts the position embeddings from the weight decay, so that
	// their structure is not pulled towards zero (absent from the training.json of runs
	// made before this option, which decayed them).
	NoPositionDecay bool `json:",omitempty"`
	// ShortCtx, ShortBatch and ShortSteps are a first phase of short rows (every row a
	// repeated segment of 3 to ShortCtx/2 tokens): at the start attention is spread evenly over
	// the context, so the pull towards one earlier position is 1/context; short rows make an
	// induction head form in a fraction of the steps. ShortSteps 0: no such phase.
	ShortCtx, ShortBatch, ShortSteps int
	// Untied gives the model an output layer of its own (lm_head.weight, config
	// tie_word_embeddings false) instead of GPT-2's tied token embedding; EmbStd, when not 0,
	// is the initial spread of the token and position embeddings (Hugging Face's: 0.02).
	// docs/induction.md measures why: in a controlled experiment only the untied model with
	// widely spread embeddings learns to copy within a few hundred steps.
	Untied bool    `json:",omitempty"`
	EmbStd float64 `json:",omitempty"`
	// RandomVocab, when not 0, draws the random tokens of repeated segments from the ids
	// below it (an alphabet the model sees often enough to learn to copy), and RandomOnly
	// makes every repeated segment random tokens (no spans of the corpus).
	RandomVocab int  `json:",omitempty"`
	RandomOnly  bool `json:",omitempty"`
	// PosInit is how the position embeddings start: "normal" (Hugging Face's N(0, 0.02))
	// or "sinusoid" (the original Transformer's sines and cosines, scaled to the same
	// spread), where attending to the previous position is one linear map away.
	PosInit             string
	Seed                uint64
	EvalEvery, EvalRows int // held-out loss every EvalEvery steps on EvalRows windows
	CheckpointEvery     int
	Name                string // the model's name in its card, e.g. "brown-gpt2"
	// Stop, when set, is asked after every step; true saves a checkpoint and ends the run
	// with ErrInterrupted (Ctrl-C in the CLI). A rerun resumes there.
	Stop func(step int) bool `json:"-"`
}

// ErrInterrupted ends a run that Options.Stop stopped; its checkpoint is saved.
var ErrInterrupted = errors.New("training interrupted; its checkpoint is saved, and the same command resumes it")

// Defaults are the options of the shipped model, models/brown-gpt2.
func Defaults() Options {
	return Options{Vocab: 4096, Layers: 4, Heads: 4, Embd: 128, Ctx: 128, Batch: 16, Steps: 1400,
		LR: 3e-3, MinLR: 3e-4, Warmup: 100, Repeat: 0.3, InductionSteps: 500, SegMin: 8, SegMax: 32, WeightDecay: 0.1, PosInit: "normal", Seed: 1,
		EvalEvery: 100, EvalRows: 32, CheckpointEvery: 50, Name: "brown-gpt2"}
}

// Validate reports options that cannot train.
func (o Options) Validate() error {
	switch {
	case o.Vocab < 257:
		return fmt.Errorf("--vocab %d: a byte-level BPE vocabulary has at least 257 tokens", o.Vocab)
	case o.Layers <= 0 || o.Heads <= 0 || o.Embd <= 0:
		return fmt.Errorf("--layers, --heads and --embd must be positive (got %d, %d, %d)", o.Layers, o.Heads, o.Embd)
	case o.Embd%o.Heads != 0:
		return fmt.Errorf("--embd %d is not divisible by --heads %d", o.Embd, o.Heads)
	case o.Ctx < 32:
		return fmt.Errorf("--ctx %d: at least 32 (the repeated segments are 8 to ctx/4 tokens)", o.Ctx)
	case o.Batch <= 0 || o.Steps <= 0:
		return fmt.Errorf("--batch and --steps must be positive (got %d, %d)", o.Batch, o.Steps)
	case o.LR <= 0 || o.MinLR < 0 || o.MinLR > o.LR:
		return fmt.Errorf("learning rates: want 0 <= --min-lr <= --lr, --lr > 0 (got %g, %g)", o.MinLR, o.LR)
	case o.Repeat < 0 || o.Repeat > 1:
		return fmt.Errorf("--repeat %g: a fraction in [0, 1]", o.Repeat)
	case o.SegMin < 2 || o.SegMax < o.SegMin || 2*o.SegMax > o.Ctx:
		return fmt.Errorf("--seg-min %d, --seg-max %d: 2 <= seg-min <= seg-max <= ctx/2", o.SegMin, o.SegMax)
	case o.ShortSteps < 0 || o.ShortSteps > o.InductionSteps:
		return fmt.Errorf("--short-steps %d: between 0 and --induction-steps", o.ShortSteps)
	case o.ShortSteps == 0 && (o.ShortCtx != 0 || o.ShortBatch != 0):
		return fmt.Errorf("--short-ctx %d, --short-batch %d: they shape a short phase, and --short-steps is 0", o.ShortCtx, o.ShortBatch)
	case o.ShortSteps > 0 && (o.ShortCtx < 8 || o.ShortCtx > o.Ctx || o.ShortBatch < 0):
		return fmt.Errorf("--short-ctx %d, --short-batch %d: a context of 8 to --ctx, and rows >= 0", o.ShortCtx, o.ShortBatch)
	case o.EmbStd < 0:
		return fmt.Errorf("--emb-std %g: a spread, at least 0 (0: Hugging Face's 0.02)", o.EmbStd)
	case o.RandomVocab != 0 && (o.RandomVocab < 2 || o.RandomVocab > o.Vocab-1):
		return fmt.Errorf("--random-vocab %d: between 2 and --vocab - 1 = %d (the ids below it; 0: the whole vocabulary)", o.RandomVocab, o.Vocab-1)
	case o.PosInit != "normal" && o.PosInit != "sinusoid":
		return fmt.Errorf("--pos-init %q: normal or sinusoid", o.PosInit)
	case o.InductionSteps < 0 || o.InductionSteps > o.Steps:
		return fmt.Errorf("--induction-steps %d: between 0 and --steps", o.InductionSteps)
	case o.Warmup < 0 || o.EvalEvery <= 0 || o.EvalRows <= 0 || o.CheckpointEvery <= 0:
		return fmt.Errorf("--warmup must be >= 0, --eval-every, --eval-rows and --checkpoint-every positive")
	}
	return nil
}

func (o Options) fingerprint() string {
	o.EvalEvery, o.CheckpointEvery, o.Name = 0, 0, "" // do not change the weights
	data, _ := json.Marshal(o)
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:8])
}

// learnVocabulary learns a vocabulary of size vocab on the training documents (never the
// held-out ones) and tokenizes the corpus with it; words counts the training words.
func learnVocabulary(docs []Doc, vocab int) (tok *tokenizer.Tokenizer, data *Data, words int, err error) {
	var texts []string
	for i, d := range docs {
		if !IsHeldOut(i) {
			texts = append(texts, d.Text)
			words += len(strings.Fields(d.Text))
		}
	}
	if tok, err = tokenizer.Train(texts, vocab); err != nil {
		return nil, nil, 0, err
	}
	return tok, Tokenize(docs, tok), words, nil
}

// shortBatch is the rows per step of the short phase: ShortBatch, or as many as keep the
// tokens per step of the full rows.
func (o Options) shortBatch() int {
	if o.ShortBatch > 0 {
		return o.ShortBatch
	}
	return max(1, o.Batch*o.Ctx/o.ShortCtx)
}

// mixAt is the rows of step t (1-based): short repeated rows during the first ShortSteps,
// then every row repeated until InductionSteps, so that copying is learnt before the text
// takes over, then Repeat of them.
func (o Options) mixAt(t int) Mix {
	m := Mix{Batch: o.Batch, Ctx: o.Ctx, Repeat: o.Repeat, SegMin: o.SegMin, SegMax: o.SegMax, Once: o.Once,
		RandomVocab: o.RandomVocab, RandomOnly: o.RandomOnly}
	switch {
	case t <= o.ShortSteps:
		m.Batch, m.Ctx, m.Repeat, m.SegMin, m.SegMax, m.Once = o.shortBatch(), o.ShortCtx, 1, 3, o.ShortCtx/2, false
	case t <= o.InductionSteps:
		m.Repeat = 1
	}
	return m
}

// lr is the learning rate of step t (1-based): linear warm-up, then cosine decay to MinLR.
func (o Options) lr(t int) float64 {
	if t <= o.Warmup {
		return o.LR * float64(t) / float64(o.Warmup)
	}
	frac := float64(t-o.Warmup) / math.Max(1, float64(o.Steps-o.Warmup))
	return o.MinLR + 0.5*(o.LR-o.MinLR)*(1+math.Cos(math.Pi*math.Min(1, frac)))
}

// Point is one step of the loss history.
type Point struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`          // the step's training batch
	Val  float64 `json:"val,omitempty"` // held-out loss, at evaluation steps
	// Copy is the loss on the second copy of repeated random segments, at evaluation steps
	// (16 rows of InductionRows, their tokens from the ids below Options.RandomVocab when it
	// is set): it falls when an induction head forms.
	Copy float64 `json:"copy,omitempty"`
}

// Metrics are the quality numbers of the finished model.
type Metrics struct {
	ValLoss       float64    `json:"heldout_loss"`   // nats/token on the held-out documents
	UnigramLoss   float64    `json:"unigram_loss"`   // same tokens, training-set unigram model
	ValTokens     int        `json:"heldout_tokens"` // tokens scored
	InductionLoss [2]float64 `json:"induction_loss"` // first copy, second copy of random segments
	InductionRows int        `json:"induction_rows"`
	// AlphabetLoss is InductionLoss with random tokens from the ids below
	// Options.RandomVocab (the training's alphabet), when it is set.
	AlphabetLoss *[2]float64 `json:"alphabet_induction_loss,omitempty"`
	InductionSeg int         `json:"induction_segment"`
}

// Report is what a run writes to training.json beside the model.
type Report struct {
	Options     Options  `json:"options"`
	Params      int      `json:"parameters"`
	TrainTokens int      `json:"train_tokens"`
	TrainWords  int      `json:"train_words"` // whitespace-separated, punctuation attached
	TrainDocs   int      `json:"train_documents"`
	ValDocs     []string `json:"heldout_documents"`
	Backend     string   `json:"backend"`
	Metrics     Metrics  `json:"metrics"`
	// TrainSeconds is the time spent in training steps and evaluations, summed over resumed
	// runs; WallSeconds the whole last invocation (corpus, tokenizer, training, export).
	TrainSeconds float64 `json:"train_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
	Resumed      bool    `json:"resumed"`
	History      []Point `json:"history"`
	Command      string  `json:"command"`
	GoVersion    string  `json:"go_version"`
}

// Run trains on docs and writes the model to out; checkpoints go to work. Command is the
// command line to record in the card.
func Run(docs []Doc, o Options, out, work, command string, log io.Writer) (*Report, error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// GoMLX's Go backend (compute v0.1.3) runs independent ops in parallel through a worker
	// pool that can wait forever (seen three times in a few thousand training steps, never in
	// traces); one op at a time, each still using every core, avoids it.
	backend := os.Getenv(engine.EnvBackend)
	if backend == "" {
		backend = "go:ops_sequential"
	}
	eng, err := engine.Open(backend)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "backend: %s (%s)\n", eng.Name, eng.Reason)
	fmt.Fprintf(log, "learning a %d-token BPE vocabulary from the training documents\n", o.Vocab)
	tok, data, words, err := learnVocabulary(docs, o.Vocab)
	if err != nil {
		return nil, err
	}
	if len(data.Train) < 4*(o.Ctx+1) || len(data.Val) < o.Ctx+1 {
		return nil, fmt.Errorf("the corpus is too small for a context of %d: %d training and %d held-out tokens", o.Ctx, len(data.Train), len(data.Val))
	}
	fmt.Fprintf(log, "%d training tokens, %d held-out tokens (%d documents: %s)\n", len(data.Train), len(data.Val),
		len(data.ValDocs), strings.Join(data.ValDocs, " "))
	cfg := o.modelConfig(tok.VocabSize(), tok.EOS())
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	evalB := 8
	progs, err := newPrograms(eng.Backend, cfg, Hyper{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: o.WeightDecay, Clip: 1, DecayPositions: !o.NoPositionDecay},
		o.Batch, evalB)
	if err == nil && o.ShortSteps > 0 {
		err = progs.addStep(o.shortBatch(), o.ShortCtx)
	}
	if err != nil {
		return nil, err
	}
	rep := &Report{Options: o, Params: int(cfg.NumParams()), TrainTokens: len(data.Train), TrainWords: words, TrainDocs: len(data.TrainDocs),
		ValDocs: data.ValDocs, Backend: eng.Name, Command: command, GoVersion: runtime.Version()}

	// Start or resume.
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	ckpt := filepath.Join(work, "checkpoint.safetensors")
	st, done, hist, secs, err := loadCheckpoint(ckpt, progs.params, o)
	if err != nil {
		return nil, err
	}
	if st != nil {
		fmt.Fprintf(log, "resuming from %s at step %d\n", ckpt, done)
		rep.Resumed = true
	} else {
		st = initState(cfg, progs.params, int64(o.Seed), o)
	}
	valRows := data.ValWindows(o.Ctx, o.EvalRows)
	copyRows := inductionRows(data, o, 16)
	if o.RandomVocab > 0 { // the copying that training teaches shows first on its alphabet
		copyRows = alphabetRows(data, o, 16)
	}
	bar := newBar(log, o.Steps)
	trainStart := time.Now()
	for t := done + 1; t <= o.Steps; t++ {
		mix := o.mixAt(t)
		loss, _, err := progs.run(st, data.Batch(o.Seed, t, mix), mix, o.lr(t), t)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", t, err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("step %d: the loss is %g (diverged): lower --lr", t, loss)
		}
		p := Point{Step: t, Loss: loss}
		if t%o.EvalEvery == 0 || t == o.Steps {
			v, err := meanLoss(progs, st.W, valRows)
			if err != nil {
				return nil, err
			}
			p.Val = v
			ls, err := progs.losses(st.W, copyRows)
			if err != nil {
				return nil, err
			}
			_, p.Copy = InductionLosses(ls, o.Ctx/2)
		}
		hist = append(hist, p)
		bar.update(t, loss, p.Val, p.Copy)
		if o.Stop != nil && t < o.Steps && o.Stop(t) {
			bar.finish()
			if err := saveCheckpoint(ckpt, progs.params, st, o, t, hist, secs+time.Since(trainStart).Seconds()); err != nil {
				return nil, err
			}
			return nil, ErrInterrupted
		}
		if t%o.CheckpointEvery == 0 && t < o.Steps {
			if err := saveCheckpoint(ckpt, progs.params, st, o, t, hist, secs+time.Since(trainStart).Seconds()); err != nil {
				return nil, err
			}
		}
	}
	bar.finish()
	rep.TrainSeconds = secs + time.Since(trainStart).Seconds()
	rep.History = hist

	fmt.Fprintln(log, "evaluating")
	m, err := evaluate(progs, st.W, data, o)
	if err != nil {
		return nil, err
	}
	rep.Metrics = m
	rep.WallSeconds = time.Since(start).Seconds()
	if err := export(out, cfg, tok, st.W, progs.params, rep, docs); err != nil {
		return nil, err
	}
	if err := saveCheckpoint(ckpt, progs.params, st, o, o.Steps, hist, rep.TrainSeconds); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "held-out loss %.3f nats/token (unigram %.3f); induction: first copy %.3f, second copy %.3f\n",
		m.ValLoss, m.UnigramLoss, m.InductionLoss[0], m.InductionLoss[1])
	fmt.Fprintf(log, "wrote %s in %s\n", out, time.Since(start).Round(time.Second))
	return rep, nil
}

// modelConfig is the GPT-2 config the options describe, for a vocabulary of vocab ids.
func (o Options) modelConfig(vocab, eos int) gpt2.Config {
	cfg := gpt2.Small()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = vocab, o.Ctx, o.Embd, o.Layers, o.Heads
	cfg.BOSTokenID, cfg.EOSTokenID = eos, eos
	if o.Untied {
		tied := false
		cfg.TieWordEmbeddings = &tied
	}
	return cfg
}

func initState(cfg gpt2.Config, params []Param, seed int64, o Options) *state {
	st := &state{}
	embStd := cfg.InitializerRange
	if o.EmbStd > 0 {
		embStd = o.EmbStd
	}
	for i, t := range gpt2.InitWeights(cfg, seed) {
		if t.Name != params[i].Name {
			panic("train: parameter order changed: " + t.Name + " vs " + params[i].Name)
		}
		w := f32(t.Data)
		switch {
		case t.Name == "wpe.weight" && o.PosInit == "sinusoid":
			w = sinusoids(t.Shape[0], t.Shape[1], embStd)
		case (t.Name == "wte.weight" || t.Name == "wpe.weight") && embStd != cfg.InitializerRange:
			for j := range w { // the same draws, spread wider
				w[j] *= float32(embStd / cfg.InitializerRange)
			}
		}
		st.W = append(st.W, tensors.FromFlatDataAndDimensions(w, t.Shape...))
		st.M = append(st.M, tensors.FromShape(st.W[i].Shape()))
		st.V = append(st.V, tensors.FromShape(st.W[i].Shape()))
	}
	return st
}

// sinusoids are [positions, dim] position embeddings: sin and cos of position / 10000^(2i/dim)
// in interleaved columns, scaled so that every entry has standard deviation std.
func sinusoids(positions, dim int, std float64) []float32 {
	out := make([]float32, positions*dim)
	for p := range positions {
		for i := 0; i < dim/2; i++ {
			a := float64(p) / math.Pow(10000, float64(2*i)/float64(dim))
			out[p*dim+2*i] = float32(std * math.Sqrt2 * math.Sin(a))
			out[p*dim+2*i+1] = float32(std * math.Sqrt2 * math.Cos(a))
		}
	}
	return out
}

func meanLoss(p *programs, w []*tensors.Tensor, rows [][]int32) (float64, error) {
	ls, err := p.losses(w, rows)
	if err != nil {
		return 0, err
	}
	sum, n := 0.0, 0
	for _, row := range ls {
		for _, v := range row {
			sum += float64(v)
			n++
		}
	}
	return sum / float64(n), nil
}

// evaluate measures the finished model: held-out loss on every held-out window, the
// unigram baseline, and the loss on both copies of repeated random segments.
func evaluate(p *programs, w []*tensors.Tensor, d *Data, o Options) (Metrics, error) {
	var m Metrics
	rows := d.ValWindows(o.Ctx, 0)
	v, err := meanLoss(p, w, rows)
	if err != nil {
		return m, err
	}
	m.ValLoss, m.ValTokens, m.UnigramLoss = v, len(rows)*o.Ctx, d.UnigramLoss()
	seg := o.Ctx / 2
	ind := inductionRows(d, o, 64)
	ls, err := p.losses(w, ind)
	if err != nil {
		return m, err
	}
	first, second := InductionLosses(ls, seg)
	m.InductionLoss = [2]float64{first, second}
	m.InductionRows, m.InductionSeg = len(ind), seg
	if o.RandomVocab > 0 {
		ls, err := p.losses(w, alphabetRows(d, o, 64))
		if err != nil {
			return m, err
		}
		first, second := InductionLosses(ls, seg)
		m.AlphabetLoss = &[2]float64{first, second}
	}
	return m, nil
}

// inductionRows are the first count rows of the induction test, ctx+1 tokens each.
func inductionRows(d *Data, o Options, count int) [][]int32 {
	return testRows(d.Vocab, d.EOS, count, o.Ctx, o.Seed+1000)
}

// alphabetRows are inductionRows with their tokens drawn from the ids below RandomVocab.
func alphabetRows(d *Data, o Options, count int) [][]int32 {
	return testRows(o.RandomVocab, d.EOS, count, o.Ctx, o.Seed+2000)
}

// testRows are count rows of InductionRows(vocab, ...) of ctx+1 tokens (the evaluation's
// row length): a segment of ctx/2, its copy, and the segment's first token again.
func testRows(vocab, eos, count, ctx int, seed uint64) [][]int32 {
	ind := InductionRows(vocab, eos, count, ctx/2, seed)
	for i, r := range ind {
		ind[i] = append(r, r[0])
	}
	return ind
}

// InductionLosses averages per-token losses (row i, index j: the loss of predicting token
// j+1) over the first copy of a segment of seg tokens (tokens 1 ... seg-1) and over the
// second copy after its first token (tokens seg+1 ... 2seg-1, each predictable by copying).
func InductionLosses(losses [][]float32, seg int) (first, second float64) {
	var n1, n2 int
	for _, row := range losses {
		for j := 0; j <= seg-2; j++ {
			first += float64(row[j])
			n1++
		}
		for j := seg; j <= 2*seg-2; j++ {
			second += float64(row[j])
			n2++
		}
	}
	return first / float64(n1), second / float64(n2)
}

func f32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

// Checkpoints hold the weights (w.NAME), AdamW's moments (m.NAME, v.NAME) and, in the
// metadata, the options' fingerprint, the step, the history and the seconds trained.
func saveCheckpoint(path string, params []Param, st *state, o Options, step int, hist []Point, secs float64) error {
	var ts []safetensors.Tensor
	for i, p := range params {
		for _, kv := range []struct {
			prefix string
			t      *tensors.Tensor
		}{{"w.", st.W[i]}, {"m.", st.M[i]}, {"v.", st.V[i]}} {
			ts = append(ts, safetensors.F32(kv.prefix+p.Name, p.Shape, tensors.MustCopyFlatData[float32](kv.t)))
		}
	}
	h, _ := json.Marshal(hist)
	return safetensors.Write(path, ts, map[string]string{"options": o.fingerprint(), "step": strconv.Itoa(step),
		"history": string(h), "seconds": strconv.FormatFloat(secs, 'f', 1, 64)})
}

func loadCheckpoint(path string, params []Param, o Options) (st *state, step int, hist []Point, secs float64, err error) {
	f, err := safetensors.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil, 0, nil
	}
	if err != nil {
		return nil, 0, nil, 0, fmt.Errorf("checkpoint: %w (remove it to start over)", err)
	}
	defer f.Close()
	md := f.Metadata()
	if md["options"] != o.fingerprint() {
		return nil, 0, nil, 0, fmt.Errorf("checkpoint %s was made with other options (model, data or schedule): remove it or give another --work directory", path)
	}
	step, err = strconv.Atoi(md["step"])
	if err != nil {
		return nil, 0, nil, 0, fmt.Errorf("checkpoint %s: bad step %q", path, md["step"])
	}
	if err := json.Unmarshal([]byte(md["history"]), &hist); err != nil {
		return nil, 0, nil, 0, fmt.Errorf("checkpoint %s: bad history: %w", path, err)
	}
	secs, _ = strconv.ParseFloat(md["seconds"], 64)
	st = &state{}
	for _, p := range params {
		for _, dst := range []struct {
			prefix string
			list   *[]*tensors.Tensor
		}{{"w.", &st.W}, {"m.", &st.M}, {"v.", &st.V}} {
			data, err := f.Float32(dst.prefix + p.Name)
			if err != nil {
				return nil, 0, nil, 0, fmt.Errorf("checkpoint %s: %w", path, err)
			}
			*dst.list = append(*dst.list, tensors.FromFlatDataAndDimensions(data, p.Shape...))
		}
	}
	return st, step, hist, secs, nil
}
