package main

import (
	"flag"
	"fmt"
)

func init() {
	register(&command{
		name:    "tokenize",
		summary: "print a text's token ids and tokens as JSON",
		usage:   "[--model M] --text T",
		examples: []string{
			`gonnsight tokenize --text "The Eiffel Tower is in the city of"`,
			`gonnsight tokenize --model openai-community/gpt2 --text "Hello, world!"`,
		},
		flags: func(fs *flag.FlagSet) func([]string) error {
			model := modelFlag(fs)
			text := fs.String("text", "", "the text to tokenize")
			return func(args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				set := false
				fs.Visit(func(f *flag.Flag) { set = set || f.Name == "text" })
				if !set {
					return usageErrorf("give the text with --text")
				}
				m, err := loadModel(*model)
				if err != nil {
					return err
				}
				tok := m.Tokenizer()
				if tok == nil {
					return fmt.Errorf("model %q has no tokenizer (no tokenizer.json, or vocab.json and merges.txt)", *model)
				}
				ids := tok.Encode(*text)
				tokens := make([]string, len(ids))
				for i, id := range ids {
					tokens[i] = tok.TokenString(id)
				}
				if ids == nil {
					ids = []int{}
				}
				return printJSON(struct {
					IDs    []int    `json:"ids"`
					Tokens []string `json:"tokens"`
				}{ids, tokens})
			}
		},
	})
}
