package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/nnsight"
)

// defaultModel is what --model defaults to: the small GPT-2 trained on the Brown Corpus
// that ships with gonnsight (models/brown-gpt2).
const defaultModel = gpt2.DefaultID

func modelFlag(fs *flag.FlagSet) *string {
	return fs.String("model", defaultModel, "model: a local directory or a Hugging Face hub id (org/name[@revision])")
}

// loadModel loads a model now (so load errors surface here) and reports its backend.
func loadModel(src string) (*nnsight.Model, error) {
	if src == "" {
		return nil, usageErrorf("--model is empty")
	}
	m := nnsight.LanguageModel(src)
	if err := m.Load(); err != nil {
		return nil, err
	}
	fmt.Fprintln(stderr, "backend:", m.Backend())
	return m, nil
}

// inputFlags are the two ways to give a prompt: text (tokenized by the model's tokenizer)
// or token ids.
type inputFlags struct {
	text *string
	ids  *string
	set  func(name string) bool
}

func addInputFlags(fs *flag.FlagSet) *inputFlags {
	in := &inputFlags{
		text: fs.String("text", "", "prompt text (tokenized with the model's tokenizer)"),
		ids:  fs.String("ids", "", "prompt token ids, comma-separated (e.g. 464,412,733)"),
	}
	in.set = func(name string) bool {
		found := false
		fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
		return found
	}
	return in
}

// given reports whether a prompt was given; it is a usage error to give both forms, or
// malformed ids.
func (in *inputFlags) given() (bool, error) {
	t, i := in.set("text"), in.set("ids")
	if t && i {
		return false, usageErrorf("give --text or --ids, not both")
	}
	if i {
		if _, err := parseIDs(*in.ids); err != nil {
			return false, err
		}
	}
	return t || i, nil
}

// require checks, before anything loads, that a well-formed prompt was given.
func (in *inputFlags) require() error {
	ok, err := in.given()
	if err == nil && !ok {
		err = usageErrorf("give a prompt with --text or --ids")
	}
	return err
}

// tokenIDs returns the prompt as token ids (required).
func (in *inputFlags) tokenIDs(m *nnsight.Model) ([]int, error) {
	if err := in.require(); err != nil {
		return nil, err
	}
	if in.set("ids") {
		return parseIDs(*in.ids)
	}
	tok := m.Tokenizer()
	if tok == nil {
		return nil, fmt.Errorf("model %q has no tokenizer (no tokenizer.json, or vocab.json and merges.txt): give --ids", m.Source())
	}
	ids := tok.Encode(*in.text)
	if len(ids) == 0 {
		return nil, errors.New("--text is empty: the prompt has no tokens")
	}
	return ids, nil
}

// value returns the prompt for commands where it is optional (nil when none was given).
func (in *inputFlags) value(m *nnsight.Model) (any, error) {
	ok, err := in.given()
	if err != nil || !ok {
		return nil, err
	}
	ids, err := in.tokenIDs(m)
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func parseIDs(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, usageErrorf("--ids: %q is not a token id (want comma-separated integers like 464,412,733)", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, usageErrorf("--ids is empty")
	}
	return ids, nil
}

func joinInts(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

// printJSON writes v as one line of JSON to stdout.
func printJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the result as JSON: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", data)
	return err
}

// noArgs rejects stray positional arguments (usually a forgotten flag name).
func noArgs(args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q (flags come as --name value)", args[0])
	}
	return nil
}

// modelAndIDs checks the input flags, then loads the model and turns them into token ids
// (a malformed command line fails before anything loads).
func modelAndIDs(src string, in *inputFlags) (*nnsight.Model, []int, error) {
	if err := in.require(); err != nil {
		return nil, nil, err
	}
	m, err := loadModel(src)
	if err != nil {
		return nil, nil, err
	}
	ids, err := in.tokenIDs(m)
	return m, ids, err
}

// modelAndValue checks the input flags, then loads the model and turns them into a trace
// input (nil if none was given).
func modelAndValue(src string, in *inputFlags) (*nnsight.Model, any, error) {
	if _, err := in.given(); err != nil {
		return nil, nil, err
	}
	m, err := loadModel(src)
	if err != nil {
		return nil, nil, err
	}
	x, err := in.value(m)
	return m, x, err
}
