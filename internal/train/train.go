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
	WeightDecay         float64
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
		LR: 3e-3, MinLR: 3e-4, Warmup: 100, Repeat: 0.3, InductionSteps: 500, WeightDecay: 0.1, Seed: 1,
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

// repeatAt is the fraction of repeated rows at step t (1-based): all of them during the
// first InductionSteps, so that copying is learnt before the text takes over, then Repeat.
func (o Options) repeatAt(t int) float64 {
	if t <= o.InductionSteps {
		return 1
	}
	return o.Repeat
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
}

// Metrics are the quality numbers of the finished model.
type Metrics struct {
	ValLoss       float64    `json:"heldout_loss"`   // nats/token on the held-out documents
	UnigramLoss   float64    `json:"unigram_loss"`   // same tokens, training-set unigram model
	ValTokens     int        `json:"heldout_tokens"` // tokens scored
	InductionLoss [2]float64 `json:"induction_loss"` // first copy, second copy of random segments
	InductionRows int        `json:"induction_rows"`
	InductionSeg  int        `json:"induction_segment"`
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
	var trainTexts []string
	words := 0
	for i, d := range docs {
		if !IsHeldOut(i) {
			trainTexts = append(trainTexts, d.Text)
			words += len(strings.Fields(d.Text))
		}
	}
	fmt.Fprintf(log, "learning a %d-token BPE vocabulary from %d training documents\n", o.Vocab, len(trainTexts))
	tok, err := tokenizer.Train(trainTexts, o.Vocab)
	if err != nil {
		return nil, err
	}
	data := Tokenize(docs, tok)
	if len(data.Train) < 4*(o.Ctx+1) || len(data.Val) < o.Ctx+1 {
		return nil, fmt.Errorf("the corpus is too small for a context of %d: %d training and %d held-out tokens", o.Ctx, len(data.Train), len(data.Val))
	}
	fmt.Fprintf(log, "%d training tokens, %d held-out tokens (%d documents: %s)\n", len(data.Train), len(data.Val),
		len(data.ValDocs), strings.Join(data.ValDocs, " "))
	cfg := gpt2.Small()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NLayer, cfg.NHead = tok.VocabSize(), o.Ctx, o.Embd, o.Layers, o.Heads
	cfg.BOSTokenID, cfg.EOSTokenID = tok.EOS(), tok.EOS()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	evalB := 8
	progs, err := newPrograms(eng.Backend, cfg, Hyper{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: o.WeightDecay, Clip: 1},
		o.Batch, evalB)
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
		st = initState(cfg, progs.params, int64(o.Seed))
	}
	valRows := data.ValWindows(o.Ctx, o.EvalRows)
	bar := newBar(log, o.Steps)
	trainStart := time.Now()
	for t := done + 1; t <= o.Steps; t++ {
		loss, _, err := progs.run(st, data.Batch(o.Seed, t, o.Batch, o.Ctx, o.repeatAt(t)), o.Batch, o.lr(t), t)
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
		}
		hist = append(hist, p)
		bar.update(t, loss, p.Val)
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

func initState(cfg gpt2.Config, params []Param, seed int64) *state {
	st := &state{}
	for i, t := range gpt2.InitWeights(cfg, seed) {
		if t.Name != params[i].Name {
			panic("train: parameter order changed: " + t.Name + " vs " + params[i].Name)
		}
		st.W = append(st.W, tensors.FromFlatDataAndDimensions(f32(t.Data), t.Shape...))
		st.M = append(st.M, tensors.FromShape(st.W[i].Shape()))
		st.V = append(st.V, tensors.FromShape(st.W[i].Shape()))
	}
	return st
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
	ind := InductionRows(d.Vocab, d.EOS, 64, seg, o.Seed+1000)
	for i, r := range ind {
		ind[i] = append(r, r[0]) // ctx+1 tokens
	}
	ls, err := p.losses(w, ind)
	if err != nil {
		return m, err
	}
	first, second := InductionLosses(ls, seg)
	m.InductionLoss = [2]float64{first, second}
	m.InductionRows, m.InductionSeg = len(ind), seg
	return m, nil
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
