package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gonnsight/gonnsight/gpt2"
)

func init() {
	register(&command{
		name:    "make-tiny",
		summary: "write a deterministic tiny random GPT-2 (Hugging Face layout, GPT-2's tokenizer) to a directory",
		usage:   "(--out DIR [--force] | --default) [--layers N] [--heads N] [--embd N] [--positions N] [--seed S]",
		examples: []string{
			`gonnsight make-tiny --out ./tiny-gpt2`,
			`gonnsight make-tiny --out ./tiny2 --layers 2 --embd 32 --seed 7 && gonnsight logits --model ./tiny2 --text Hello`,
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			out := fs.String("out", "", "the directory to write (created if needed)")
			def := fs.Bool("default", false, "generate the default tiny model ("+gpt2.TinyID+") into its cache directory if missing")
			layers := fs.Int("layers", 4, "n_layer")
			heads := fs.Int("heads", 4, "n_head")
			embd := fs.Int("embd", 64, "n_embd (a multiple of --heads)")
			positions := fs.Int("positions", 256, "n_positions (the longest sequence)")
			seed := fs.Int64("seed", 0, "seed of the weights: the same options give the same bytes")
			force := fs.Bool("force", false, "overwrite a model already in --out")
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *def {
					dir, err := gpt2.EnsureTiny()
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(stdout, "%s is in %s\n", gpt2.TinyID, dir)
					return err
				}
				if *out == "" {
					return usageErrorf("give the directory with --out (or --default)")
				}
				for _, f := range []struct {
					name string
					v    int
				}{{"layers", *layers}, {"heads", *heads}, {"embd", *embd}, {"positions", *positions}} {
					if f.v <= 0 {
						return usageErrorf("--%s must be positive (got %d)", f.name, f.v)
					}
				}
				if !*force {
					var present []string
					for _, name := range []string{"config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json"} {
						if _, err := os.Lstat(filepath.Join(*out, name)); err == nil {
							present = append(present, name)
						}
					}
					if len(present) > 0 {
						return fmt.Errorf("%s already holds a model (%s): not overwriting it; choose another --out or add --force",
							*out, strings.Join(present, ", "))
					}
				}
				o := gpt2.TinyOptions{Layers: *layers, Heads: *heads, Embd: *embd, Positions: *positions, Seed: *seed}
				if err := gpt2.MakeTiny(*out, o); err != nil {
					return err
				}
				c := o.Config()
				_, err := fmt.Fprintf(stdout, "wrote %s: GPT-2 with n_layer=%d n_head=%d n_embd=%d n_positions=%d vocab_size=%d, seed %d\n",
					*out, c.NLayer, c.NHead, c.NEmbd, c.NPositions, c.VocabSize, *seed)
				return err
			}
		},
	})
}
