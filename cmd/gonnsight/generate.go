package main

import (
	"flag"
	"fmt"
	"math"

	"github.com/gonnsight/gonnsight/nnsight"
)

func init() {
	register(&command{
		name:    "generate",
		summary: "continue a prompt, greedily or by sampling",
		usage:   "[--model M] (--text T | --ids 1,2,3) [--max-new-tokens N] [--greedy | --temperature F [--top-k K] [--seed S]] [--no-cache] [--json]",
		examples: []string{
			`gonnsight generate --text "The Eiffel Tower is in the city of" --max-new-tokens 10`,
			`gonnsight generate --ids 464,412,733 --temperature 0.8 --top-k 40 --seed 1 --json`,
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			model := modelFlag(fs)
			in := addInputFlags(fs)
			maxNew := fs.Int("max-new-tokens", 20, "how many tokens to generate at most")
			greedy := fs.Bool("greedy", true, "pick the most likely token at each step (the default; sampling needs --temperature)")
			temp := fs.Float64("temperature", 0, "sample with this temperature (> 0) instead of decoding greedily")
			topK := fs.Int("top-k", 0, "when sampling, keep only the K most likely tokens (0: all)")
			seed := fs.Int64("seed", 0, "seed of the sampler")
			noCache := fs.Bool("no-cache", false, "recompute the whole prefix at every step instead of using a key/value cache")
			ignoreEOS := fs.Bool("ignore-eos", false, "keep generating after the end-of-text token")
			asJSON := fs.Bool("json", false, `print {"ids", "new_ids", "text", ...} as JSON instead of the text`)
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := in.require(); err != nil {
					return err
				}
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				switch {
				case math.IsNaN(*temp) || math.IsInf(*temp, 0):
					return usageErrorf("--temperature must be a finite number (got %g)", *temp)
				case *temp < 0:
					return usageErrorf("--temperature must be positive (got %g)", *temp)
				case set["greedy"] && *greedy && *temp > 0:
					return usageErrorf("--greedy and --temperature exclude each other")
				case set["greedy"] && !*greedy && *temp == 0:
					return usageErrorf("--greedy=false needs --temperature > 0 to sample")
				case (set["top-k"] || set["seed"]) && *temp == 0:
					return usageErrorf("--top-k and --seed apply to sampling: give --temperature > 0")
				case *topK < 0:
					return usageErrorf("--top-k must not be negative (got %d)", *topK)
				case *maxNew <= 0:
					return usageErrorf("--max-new-tokens must be positive (got %d)", *maxNew)
				}
				m, ids, err := modelAndIDs(*model, in)
				if err != nil {
					return err
				}
				var opts []nnsight.GenOption
				if *temp > 0 {
					opts = append(opts, nnsight.Temperature(*temp), nnsight.TopK(*topK), nnsight.Seed(*seed))
				}
				if *noCache {
					opts = append(opts, nnsight.NoCache())
				}
				if *ignoreEOS {
					opts = append(opts, nnsight.IgnoreEOS())
				}
				gen, err := m.Generate(ids, *maxNew, nil, opts...)
				if err != nil {
					return err
				}
				return printGeneration(m, gen, *asJSON)
			}
		},
	})
}

func printGeneration(m *nnsight.Model, gen *nnsight.Generation, asJSON bool) error {
	all, newIDs := gen.Tokens[0], gen.NewTokens[0]
	out := struct {
		IDs          []int   `json:"ids"`
		NewIDs       []int   `json:"new_ids"`
		Text         *string `json:"text,omitempty"`
		NewText      *string `json:"new_text,omitempty"`
		StoppedAtEOS bool    `json:"stopped_at_eos"`
		Backend      string  `json:"backend"`
	}{IDs: all, NewIDs: newIDs, StoppedAtEOS: gen.StoppedAt[0], Backend: m.Backend()}
	if tok := m.Tokenizer(); tok != nil {
		text, err := tok.Decode(all)
		if err != nil {
			return fmt.Errorf("decoding the tokens: %w", err)
		}
		newText, err := tok.Decode(newIDs)
		if err != nil {
			return fmt.Errorf("decoding the new tokens: %w", err)
		}
		out.Text, out.NewText = &text, &newText
	}
	if asJSON {
		return printJSON(out)
	}
	if out.Text != nil {
		_, err := fmt.Fprintln(stdout, *out.Text)
		return err
	}
	// No tokenizer: the token ids are the text.
	_, err := fmt.Fprintln(stdout, joinInts(all))
	return err
}
