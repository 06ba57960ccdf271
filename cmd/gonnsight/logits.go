package main

import (
	"flag"
	"fmt"
	"sort"

	"github.com/gonnsight/gonnsight/nnsight"
)

func init() {
	register(&command{
		name:    "logits",
		summary: "run the model on a prompt and print its logits as JSON",
		usage:   "[--model M] (--text T | --ids 1,2,3) [--top K]",
		examples: []string{
			`gonnsight logits --text "The Eiffel Tower is in the city of"`,
			`gonnsight logits --model ./my-gpt2 --ids 464,412,733 --top 10`,
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			model := modelFlag(fs)
			in := addInputFlags(fs)
			topK := fs.Int("top", 5, "how many of the last position's highest logits to list")
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := in.require(); err != nil {
					return err
				}
				m, ids, err := modelAndIDs(*model, in)
				if err != nil {
					return err
				}
				return printLogits(m, ids, *topK)
			}
		},
	})
}

type topLogit struct {
	ID    int     `json:"id"`
	Token string  `json:"token"`
	Logit float32 `json:"logit"`
}

func printLogits(m *nnsight.Model, ids []int, topK int) error {
	res, err := m.Trace(ids, nil)
	if err != nil {
		return err
	}
	data, shape, err := nnsight.Float32(res.Logits())
	if err != nil {
		return fmt.Errorf("reading the logits: %w", err)
	}
	if len(shape) != 3 || shape[0] != 1 || shape[1] != len(ids) {
		return fmt.Errorf("the logits have shape %v, expected [1 %d vocab]", shape, len(ids))
	}
	seq, vocab := shape[1], shape[2]
	argmax := make([]int, seq)
	for p := range seq {
		row := data[p*vocab : (p+1)*vocab]
		best := 0
		for i, v := range row {
			if v > row[best] {
				best = i
			}
		}
		argmax[p] = best
	}
	last := data[(seq-1)*vocab:]
	order := make([]int, vocab)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return last[order[a]] > last[order[b]] })
	topK = min(max(topK, 0), vocab)
	top := make([]topLogit, topK)
	tok := m.Tokenizer()
	for i := range top {
		id := order[i]
		top[i] = topLogit{ID: id, Logit: last[id]}
		if tok != nil {
			top[i].Token = tok.TokenString(id)
		}
	}
	return printJSON(struct {
		IDs        []int      `json:"ids"`
		Backend    string     `json:"backend"`
		LastLogits []float32  `json:"last_logits"`
		Argmax     []int      `json:"argmax"`
		Top        []topLogit `json:"top"`
	}{ids, m.Backend(), last, argmax, top})
}
