package tokenizer

import (
	"fmt"
	"sort"
)

// Train learns a byte-level BPE vocabulary of vocabSize tokens from texts, the way GPT-2's
// was made: texts are split by the same pre-tokenizer Encode uses, each piece starts as its
// bytes, and the most frequent adjacent pair (summed over all pieces) is merged until the
// vocabulary is full or no pair occurs twice. The vocabulary is the 256 bytes, then the
// merges in the order they were learnt, then "<|endoftext|>" (the last id, special as in
// GPT-2). Ties between equally frequent pairs go to the pair whose parts were made first,
// so the same texts always give the same files.
func Train(texts []string, vocabSize int) (*Tokenizer, error) {
	if vocabSize < 257 {
		return nil, fmt.Errorf("tokenizer: a byte-level BPE vocabulary needs at least 257 tokens (256 bytes and %s), got %d", EndOfText, vocabSize)
	}
	// Count the pieces.
	counts := map[string]int{}
	for _, text := range texts {
		for len(text) > 0 {
			n := nextPiece(text)
			counts[text[:n]]++
			text = text[n:]
		}
	}
	pieces := make([]string, 0, len(counts))
	for p := range counts {
		pieces = append(pieces, p)
	}
	sort.Strings(pieces) // map order must not leak into the result
	words := make([][]int32, len(pieces))
	freq := make([]int, len(pieces))
	for i, p := range pieces {
		w := make([]int32, len(p))
		for j := 0; j < len(p); j++ {
			w[j] = int32(p[j])
		}
		words[i], freq[i] = w, counts[p]
	}
	// symbols[id] is the byte-level string of symbol id (the vocabulary entry).
	symbols := make([]string, 256, vocabSize)
	symbolID := map[string]int32{}
	for b := 0; b < 256; b++ {
		symbols[b] = string(byteToRune[b])
		symbolID[symbols[b]] = int32(b)
	}
	pairCount := map[uint64]int{}
	where := map[uint64][]int32{} // pair -> words that held it when counted (may be stale)
	for i, w := range words {
		for j := 0; j+1 < len(w); j++ {
			k := pairKey(w[j], w[j+1])
			pairCount[k] += freq[i]
			where[k] = append(where[k], int32(i))
		}
	}
	var merges [][2]string
	for len(symbols) < vocabSize-1 {
		best, bestN := uint64(0), 1
		for k, n := range pairCount {
			if n > bestN || (n == bestN && n > 1 && k < best) {
				best, bestN = k, n
			}
		}
		if bestN < 2 {
			break
		}
		a, b := int32(best>>32), int32(uint32(best))
		// Two merges may spell the same string ("ab"+"c", "a"+"bc"): one token for both.
		id, ok := symbolID[symbols[a]+symbols[b]]
		if !ok {
			id = int32(len(symbols))
			symbols = append(symbols, symbols[a]+symbols[b])
			symbolID[symbols[id]] = id
		}
		merges = append(merges, [2]string{symbols[a], symbols[b]})
		seen := map[int32]bool{}
		for _, wi := range where[best] {
			if seen[wi] {
				continue
			}
			seen[wi] = true
			w := words[wi]
			if !hasPair(w, a, b) {
				continue
			}
			f := freq[wi]
			for j := 0; j+1 < len(w); j++ {
				k := pairKey(w[j], w[j+1])
				if pairCount[k] -= f; pairCount[k] <= 0 {
					delete(pairCount, k)
				}
			}
			out := w[:0]
			for j := 0; j < len(w); j++ {
				if j+1 < len(w) && w[j] == a && w[j+1] == b {
					out = append(out, id)
					j++
				} else {
					out = append(out, w[j])
				}
			}
			words[wi] = out
			for j := 0; j+1 < len(out); j++ {
				k := pairKey(out[j], out[j+1])
				pairCount[k] += f
				if out[j] == id || out[j+1] == id {
					where[k] = append(where[k], wi)
				}
			}
		}
		delete(pairCount, best)
		delete(where, best)
	}
	vocab := make(map[string]int, len(symbols)+1)
	for i, s := range symbols {
		vocab[s] = i
	}
	vocab[EndOfText] = len(symbols)
	t, err := build(vocab, merges, []special{{content: EndOfText, id: len(symbols)}})
	if err != nil {
		return nil, err
	}
	t.vocabJSON = synthVocabJSON(t)
	t.mergesTXT = synthMergesTXT(merges)
	return t, nil
}

func hasPair(w []int32, a, b int32) bool {
	for j := 0; j+1 < len(w); j++ {
		if w[j] == a && w[j+1] == b {
			return true
		}
	}
	return false
}
