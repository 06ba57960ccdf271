package main

import (
	"flag"
	"fmt"
	"math"
	"sort"
	"strconv"

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
	ID    int       `json:"id"`
	Token string    `json:"token"`
	Logit jsonFloat `json:"logit"`
}

// jsonFloat is a float32 that encodes NaN and ±Inf as null: JSON has no such numbers, and a
// model can produce them (a NaN put in by an intervention, overflowing weights).
type jsonFloat float32

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 32), nil
}

// less orders logits for the top list: finite values by size, NaN after everything.
func less(a, b float32) bool {
	if math.IsNaN(float64(b)) {
		return !math.IsNaN(float64(a))
	}
	return a > b
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
			if less(v, row[best]) {
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
	sort.SliceStable(order, func(a, b int) bool { return less(last[order[a]], last[order[b]]) })
	nonFinite := 0
	lastJSON := make([]jsonFloat, len(last))
	for i, v := range last {
		lastJSON[i] = jsonFloat(v)
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			nonFinite++
		}
	}
	if nonFinite > 0 {
		fmt.Fprintf(stderr, "warning: %d of the last position's %d logits are NaN or infinite (written as null)\n", nonFinite, len(last))
	}
	topK = min(max(topK, 0), vocab)
	top := make([]topLogit, topK)
	tok := m.Tokenizer()
	for i := range top {
		id := order[i]
		top[i] = topLogit{ID: id, Logit: jsonFloat(last[id])}
		if tok != nil {
			top[i].Token = tok.TokenString(id)
		}
	}
	return printJSON(struct {
		IDs        []int       `json:"ids"`
		Backend    string      `json:"backend"`
		LastLogits []jsonFloat `json:"last_logits"`
		Argmax     []int       `json:"argmax"`
		Top        []topLogit  `json:"top"`
	}{ids, m.Backend(), lastJSON, argmax, top})
}
