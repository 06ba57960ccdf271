package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gonnsight/gonnsight/internal/fsx"
)

// maxFileBytes bounds a tokenizer file (GPT-2's tokenizer.json is 1.4 MB; the largest
// tokenizers in use are tens of MB).
const maxFileBytes = 512 << 20

// Load reads a tokenizer from dir: either a Hugging Face tokenizer.json (BPE model; merges
// as "a b" strings or [a, b] pairs; added_tokens are special tokens) or, failing that, the
// pair vocab.json + merges.txt.
func Load(dir string) (*Tokenizer, error) {
	tjPath := filepath.Join(dir, "tokenizer.json")
	data, err := fsx.ReadRegular(tjPath, maxFileBytes)
	if err == nil {
		t, err := fromTokenizerJSON(data)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", tjPath, err)
		}
		return t, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	vocab, errV := fsx.ReadRegular(filepath.Join(dir, "vocab.json"), maxFileBytes)
	merges, errM := fsx.ReadRegular(filepath.Join(dir, "merges.txt"), maxFileBytes)
	if errors.Is(errV, fs.ErrNotExist) || errors.Is(errM, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: no tokenizer found in %q: looked for tokenizer.json, or vocab.json and merges.txt", dir)
	}
	if errV != nil {
		return nil, fmt.Errorf("tokenizer: %w", errV)
	}
	if errM != nil {
		return nil, fmt.Errorf("tokenizer: %w", errM)
	}
	t, err := FromFiles(vocab, merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: loading %q: %w", dir, err)
	}
	return t, nil
}

// FromFiles builds a tokenizer from the contents of vocab.json (token -> id) and merges.txt
// (one "a b" merge per line in rank order; a leading "#version" line is skipped).
// "<|endoftext|>", when in the vocabulary, is treated as a special token.
func FromFiles(vocabJSON, mergesTXT []byte) (*Tokenizer, error) {
	var vocab map[string]int
	if err := json.Unmarshal(vocabJSON, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: parsing vocab.json: %w", err)
	}
	merges, err := parseMerges(mergesTXT)
	if err != nil {
		return nil, err
	}
	var specials []special
	if id, ok := vocab[EndOfText]; ok {
		specials = append(specials, special{content: EndOfText, id: id})
	}
	t, err := build(vocab, merges, specials)
	if err != nil {
		return nil, err
	}
	t.vocabJSON = append([]byte(nil), vocabJSON...)
	t.mergesTXT = append([]byte(nil), mergesTXT...)
	return t, nil
}

func parseMerges(data []byte) ([][2]string, error) {
	lines := strings.Split(string(data), "\n")
	merges := make([][2]string, 0, len(lines))
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if i == 0 && strings.HasPrefix(line, "#version") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		parts := strings.Split(line, " ")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("tokenizer: merges.txt line %d: want two tokens separated by a space, got %q", i+1, line)
		}
		merges = append(merges, [2]string{parts[0], parts[1]})
	}
	return merges, nil
}

type hfTokenizerJSON struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		LStrip  bool   `json:"lstrip"`
		RStrip  bool   `json:"rstrip"`
	} `json:"added_tokens"`
	Model struct {
		Type   string            `json:"type"`
		Vocab  map[string]int    `json:"vocab"`
		Merges []json.RawMessage `json:"merges"`
	} `json:"model"`
}

func fromTokenizerJSON(data []byte) (*Tokenizer, error) {
	var tj hfTokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if tj.Model.Type != "" && tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported (want BPE)", tj.Model.Type)
	}
	if len(tj.Model.Vocab) == 0 {
		return nil, fmt.Errorf("model.vocab is missing or empty")
	}
	merges := make([][2]string, 0, len(tj.Model.Merges))
	for i, raw := range tj.Model.Merges {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			parts := strings.Split(s, " ")
			if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
				return nil, fmt.Errorf("model.merges[%d]: want \"a b\", got %q", i, s)
			}
			merges = append(merges, [2]string{parts[0], parts[1]})
			continue
		}
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("model.merges[%d]: want \"a b\" or [a, b], got %s", i, raw)
		}
		merges = append(merges, [2]string{pair[0], pair[1]})
	}
	vocab := make(map[string]int, len(tj.Model.Vocab)+len(tj.AddedTokens))
	for k, v := range tj.Model.Vocab {
		vocab[k] = v
	}
	var specials []special
	for _, at := range tj.AddedTokens {
		if at.Content == "" {
			continue
		}
		if id, ok := vocab[at.Content]; ok && id != at.ID {
			return nil, fmt.Errorf("added token %q has id %d but model.vocab gives %d", at.Content, at.ID, id)
		}
		vocab[at.Content] = at.ID
		specials = append(specials, special{content: at.Content, id: at.ID, lstrip: at.LStrip, rstrip: at.RStrip})
	}
	t, err := build(vocab, merges, specials)
	if err != nil {
		return nil, err
	}
	t.vocabJSON = synthVocabJSON(t)
	t.mergesTXT = synthMergesTXT(merges)
	return t, nil
}

// synthVocabJSON writes the vocabulary as vocab.json, entries in id order.
func synthVocabJSON(t *Tokenizer) []byte {
	ids := make([]int, 0, len(t.ids))
	for _, id := range t.ids {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	out := []byte{'{'}
	for i, id := range ids {
		if i > 0 {
			out = append(out, ", "...)
		}
		buf.Reset()
		_ = enc.Encode(t.tokens[id]) // a string always encodes
		out = append(out, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
		out = fmt.Appendf(out, ": %d", id)
	}
	return append(out, '}')
}

func synthMergesTXT(merges [][2]string) []byte {
	var sb strings.Builder
	sb.WriteString("#version: 0.2\n")
	for _, m := range merges {
		sb.WriteString(m[0])
		sb.WriteByte(' ')
		sb.WriteString(m[1])
		sb.WriteByte('\n')
	}
	return []byte(sb.String())
}
