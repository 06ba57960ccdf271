// Package tokenizer implements GPT-2's byte-level BPE tokenizer (encode text to token ids and back),
// with the GPT-2 vocabulary embedded as the default and loaders for vocab.json+merges.txt or tokenizer.json.
//
// Encode reproduces OpenAI's GPT-2 encoder exactly: the text is split by a hand-written
// equivalent of GPT-2's pre-tokenization regex
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// each piece is mapped byte by byte onto GPT-2's printable byte alphabet and merged with
// the BPE merge ranks.
//
// Special tokens: like the Hugging Face tokenizers' tokenizer(text), added tokens such as
// "<|endoftext|>" found in the input text are recognised and emitted as their single id
// (50256 for GPT-2); the text between them is encoded normally. (OpenAI's original
// encoder would instead split "<|endoftext|>" into ordinary tokens.) For vocab.json +
// merges.txt sources, "<|endoftext|>" is treated as special when the vocabulary has it; for
// tokenizer.json sources, every entry of added_tokens is (honouring lstrip/rstrip).
//
// Go strings may hold invalid UTF-8: each invalid byte is treated like a punctuation
// character (as U+FFFD would be) but its original byte is kept, so Decode(Encode(s)) == s
// for every string s.
package tokenizer

import (
	"container/heap"
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:embed gpt2data/vocab.json
var gpt2Vocab []byte

//go:embed gpt2data/merges.txt
var gpt2Merges []byte

// EndOfText is the GPT-2 end-of-text token.
const EndOfText = "<|endoftext|>"

// Tokenizer is a byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocabSize int
	tokens    []string       // id -> raw vocab entry ("" for gaps)
	decoded   []string       // id -> decoded bytes
	hasToken  []bool         // id -> present in vocab
	ids       map[string]int // raw vocab entry -> id

	// Symbols: vocab ids, plus extra ids >= vocabSize for merge parts/results that
	// are not in the vocabulary (kept so BPE follows the merge list exactly).
	extra     []string
	symbolIDs map[string]int
	byteSym   [256]int32
	merges    map[uint64]mergeInfo

	specials []special
	eos      int

	vocabJSON, mergesTXT []byte

	cacheMu sync.RWMutex
	cache   map[string][]int
}

type mergeInfo struct {
	rank   int32
	result int32
}

type special struct {
	content        string
	id             int
	lstrip, rstrip bool
}

var (
	gpt2Once sync.Once
	gpt2Tok  *Tokenizer
)

// GPT2 returns the tokenizer of OpenAI's GPT-2 (vocabulary of 50257 tokens), built from the
// embedded files once and shared afterwards.
func GPT2() *Tokenizer {
	gpt2Once.Do(func() {
		t, err := FromFiles(gpt2Vocab, gpt2Merges)
		if err != nil {
			panic("tokenizer: embedded GPT-2 data is invalid: " + err.Error())
		}
		gpt2Tok = t
	})
	return gpt2Tok
}

// VocabSize returns the number of token ids (one more than the largest id).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// EOS returns the id of "<|endoftext|>" or -1 if the vocabulary has no such token.
func (t *Tokenizer) EOS() int { return t.eos }

// RawToken returns the vocabulary entry of id as written in vocab.json (e.g. "ĠParis"),
// or "" if id is out of range.
func (t *Tokenizer) RawToken(id int) string {
	if id < 0 || id >= t.vocabSize {
		return ""
	}
	return t.tokens[id]
}

// TokenString returns the text of one token (its decoded bytes, e.g. " Paris"), or "" if id
// is out of range. A token holding part of a multi-byte character yields invalid UTF-8.
func (t *Tokenizer) TokenString(id int) string {
	if id < 0 || id >= t.vocabSize {
		return ""
	}
	return t.decoded[id]
}

// VocabJSON returns a vocab.json (token -> id) equivalent to this tokenizer's vocabulary.
func (t *Tokenizer) VocabJSON() []byte { return append([]byte(nil), t.vocabJSON...) }

// MergesTXT returns a merges.txt ("#version: 0.2" then one merge per line, in rank order).
func (t *Tokenizer) MergesTXT() []byte { return append([]byte(nil), t.mergesTXT...) }

// Decode turns token ids back into text. The bytes of the tokens are concatenated as is
// (no replacement of invalid UTF-8), so Decode(Encode(s)) == s.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var sb strings.Builder
	for _, id := range ids {
		if id < 0 || id >= t.vocabSize || !t.hasToken[id] {
			return "", fmt.Errorf("tokenizer: token id %d out of range (vocab size %d)", id, t.vocabSize)
		}
		sb.WriteString(t.decoded[id])
	}
	return sb.String(), nil
}

// Encode converts text to token ids.
func (t *Tokenizer) Encode(text string) []int {
	out := make([]int, 0, len(text)/3+1)
	// next[i] is where specials[i] next occurs at or after pos (-1: nowhere), found once
	// and searched again only after pos passes it, so the search is linear in the text.
	next := make([]int, len(t.specials))
	for i := range next {
		next[i] = -2 // not searched yet
	}
	pos := 0
	for pos < len(text) {
		start, end, sp := t.findSpecial(text, pos, next)
		if sp == nil {
			out = t.encodeOrdinary(text[pos:], out)
			break
		}
		out = t.encodeOrdinary(text[pos:start], out)
		out = append(out, sp.id)
		pos = end
	}
	return out
}

// specialScanHook, when set (tests), is told how many bytes each search for a special token read.
var specialScanHook func(n int)

// findSpecial returns the leftmost (longest on ties) special token occurrence in text at or
// after pos, with the span it consumes (including whitespace stripped by lstrip/rstrip, never
// before pos). next caches each special's next occurrence across calls (see Encode).
func (t *Tokenizer) findSpecial(text string, pos int, next []int) (int, int, *special) {
	best, bestEnd := -1, -1
	var bestSp *special
	for i := range t.specials {
		sp := &t.specials[i]
		if next[i] == -2 || (next[i] >= 0 && next[i] < pos) {
			j := strings.Index(text[pos:], sp.content)
			if specialScanHook != nil {
				if j < 0 {
					specialScanHook(len(text) - pos)
				} else {
					specialScanHook(j + len(sp.content))
				}
			}
			if j < 0 {
				next[i] = -1
			} else {
				next[i] = pos + j
			}
		}
		j := next[i]
		if j < 0 {
			continue
		}
		if best < 0 || j < best || (j == best && j+len(sp.content) > bestEnd) {
			best, bestEnd, bestSp = j, j+len(sp.content), sp
		}
	}
	if bestSp == nil {
		return -1, -1, nil
	}
	start, end := best, bestEnd
	if bestSp.lstrip {
		for start > pos {
			r, n := utf8.DecodeLastRuneInString(text[pos:start])
			if !isSpace(r) || (r == utf8.RuneError && n == 1) {
				break
			}
			start -= n
		}
	}
	if bestSp.rstrip {
		for end < len(text) {
			r, n := utf8.DecodeRuneInString(text[end:])
			if !isSpace(r) || (r == utf8.RuneError && n == 1) {
				break
			}
			end += n
		}
	}
	return start, end, bestSp
}

const (
	maxCacheEntries = 1 << 16
	maxCachedLen    = 64
)

func (t *Tokenizer) encodeOrdinary(text string, out []int) []int {
	for len(text) > 0 {
		n := nextPiece(text)
		out = t.encodePiece(text[:n], out)
		text = text[n:]
	}
	return out
}

func (t *Tokenizer) encodePiece(piece string, out []int) []int {
	if len(piece) <= maxCachedLen {
		t.cacheMu.RLock()
		ids, ok := t.cache[piece]
		t.cacheMu.RUnlock()
		if ok {
			return append(out, ids...)
		}
	}
	start := len(out)
	out = t.bpe(piece, out)
	if len(piece) <= maxCachedLen {
		ids := append([]int(nil), out[start:]...)
		t.cacheMu.Lock()
		if len(t.cache) >= maxCacheEntries {
			t.cache = make(map[string][]int)
		}
		t.cache[strings.Clone(piece)] = ids
		t.cacheMu.Unlock()
	}
	return out
}

// symbol is one node of the doubly linked list of symbols being merged.
type symbol struct {
	id         int32
	prev, next int32 // -1 at ends
	alive      bool
}

type candidate struct {
	rank        int32
	pos         int32 // index of the left symbol
	left, right int32 // symbol ids when pushed, to detect stale entries
}

type candHeap []candidate

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpe applies the merges to one pre-tokenized piece, following OpenAI's algorithm: repeatedly
// take the pair with the lowest merge rank and merge all its non-overlapping occurrences
// from left to right, until no pair of adjacent symbols has a merge.
func (t *Tokenizer) bpe(piece string, out []int) []int {
	n := len(piece)
	if n == 1 {
		return t.emit(t.byteSym[piece[0]], out)
	}
	syms := make([]symbol, n)
	for i := 0; i < n; i++ {
		syms[i] = symbol{id: t.byteSym[piece[i]], prev: int32(i - 1), next: int32(i + 1), alive: true}
	}
	syms[n-1].next = -1

	h := make(candHeap, 0, n)
	push := func(pos int32) {
		nx := syms[pos].next
		if nx < 0 {
			return
		}
		a, b := syms[pos].id, syms[nx].id
		if m, ok := t.merges[pairKey(a, b)]; ok {
			heap.Push(&h, candidate{rank: m.rank, pos: pos, left: a, right: b})
		}
	}
	for i := 0; i < n-1; i++ {
		if m, ok := t.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h = append(h, candidate{rank: m.rank, pos: int32(i), left: syms[i].id, right: syms[i+1].id})
		}
	}
	heap.Init(&h)

	var round []candidate
	for h.Len() > 0 {
		// Take every pending candidate with the lowest rank: they are all occurrences
		// of the same pair. Merge them left to right, skipping stale/overlapping ones.
		rank := h[0].rank
		round = round[:0]
		for h.Len() > 0 && h[0].rank == rank {
			round = append(round, heap.Pop(&h).(candidate))
		}
		var touched []int32
		for _, c := range round { // already sorted by position
			s := &syms[c.pos]
			if !s.alive || s.id != c.left || s.next < 0 || syms[s.next].id != c.right {
				continue
			}
			r := s.next
			s.id = t.merges[pairKey(c.left, c.right)].result
			s.next = syms[r].next
			syms[r].alive = false
			if s.next >= 0 {
				syms[s.next].prev = c.pos
			}
			touched = append(touched, c.pos)
		}
		// New adjacent pairs can only have higher ranks than this round's pair when the
		// merges come from BPE training; pushing them after the round keeps OpenAI's
		// semantics for any merge list.
		for _, p := range touched {
			if !syms[p].alive {
				continue
			}
			if pv := syms[p].prev; pv >= 0 {
				push(pv)
			}
			push(p)
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		out = t.emit(syms[i].id, out)
	}
	return out
}

// emit appends the token id of symbol s. Symbols missing from the vocabulary (possible
// only with inconsistent vocab/merges files) are emitted as their single-character parts
// that the vocabulary has.
func (t *Tokenizer) emit(s int32, out []int) []int {
	if int(s) < t.vocabSize {
		return append(out, int(s))
	}
	str := t.extra[int(s)-t.vocabSize]
	for _, r := range str {
		if id, ok := t.ids[string(r)]; ok {
			out = append(out, id)
		}
	}
	return out
}

// symbolFor interns a symbol string, returning its vocab id or an extra id.
func (t *Tokenizer) symbolFor(s string) int32 {
	if id, ok := t.ids[s]; ok {
		return int32(id)
	}
	if id, ok := t.symbolIDs[s]; ok {
		return int32(id)
	}
	id := t.vocabSize + len(t.extra)
	t.extra = append(t.extra, s)
	t.symbolIDs[s] = id
	return int32(id)
}

// build finishes a Tokenizer from a vocabulary (id -> entry) and ordered merges.
func build(vocab map[string]int, merges [][2]string, specials []special) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, fmt.Errorf("tokenizer: empty vocabulary")
	}
	// Tables are sized by the largest id: bound it by what the file holds (ids may leave
	// gaps, but not more gaps than tokens), so a corrupt id cannot demand gigabytes.
	maxID := 2*len(vocab) + 1024
	size := 0
	for tok, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer: negative id %d for token %q", id, tok)
		}
		if id >= maxID {
			return nil, fmt.Errorf("tokenizer: token %q has id %d, but the vocabulary holds only %d tokens (ids must be below %d)",
				tok, id, len(vocab), maxID)
		}
		if id+1 > size {
			size = id + 1
		}
	}
	t := &Tokenizer{
		vocabSize: size,
		tokens:    make([]string, size),
		decoded:   make([]string, size),
		hasToken:  make([]bool, size),
		ids:       vocab,
		symbolIDs: map[string]int{},
		merges:    make(map[uint64]mergeInfo, len(merges)),
		eos:       -1,
		cache:     map[string][]int{},
	}
	isSpecial := map[int]bool{}
	for _, sp := range specials {
		isSpecial[sp.id] = true
	}
	for tok, id := range vocab {
		if t.hasToken[id] {
			return nil, fmt.Errorf("tokenizer: id %d used by both %q and %q", id, t.tokens[id], tok)
		}
		t.hasToken[id] = true
		t.tokens[id] = tok
		if isSpecial[id] {
			t.decoded[id] = tok
		} else {
			t.decoded[id] = decodeByteLevel(tok)
		}
	}
	if id, ok := vocab[EndOfText]; ok {
		t.eos = id
	}
	for b := 0; b < 256; b++ {
		t.byteSym[b] = t.symbolFor(string(byteToRune[b]))
	}
	for rank, m := range merges {
		a, b := t.symbolFor(m[0]), t.symbolFor(m[1])
		k := pairKey(a, b)
		if _, dup := t.merges[k]; dup {
			continue // OpenAI's dict keeps the last rank; HF keeps the first. Keep the first.
		}
		t.merges[k] = mergeInfo{rank: int32(rank), result: t.symbolFor(m[0] + m[1])}
	}
	// Longer special tokens first so ties at the same position prefer the longest.
	sort.SliceStable(specials, func(i, j int) bool { return len(specials[i].content) > len(specials[j].content) })
	t.specials = specials
	return t, nil
}

// byteToRune is GPT-2's bytes_to_unicode table: printable bytes map to themselves and the
// others to code points from 256 upwards, in byte order.
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := make(map[rune]byte, 256)
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			b2r[b] = rune(b)
		} else {
			b2r[b] = next
			next++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

// decodeByteLevel maps a vocab entry back to the bytes it stands for. Characters outside
// the byte alphabet are kept as their UTF-8.
func decodeByteLevel(tok string) string {
	buf := make([]byte, 0, len(tok))
	for _, r := range tok {
		if b, ok := runeToByte[r]; ok {
			buf = append(buf, b)
		} else {
			buf = utf8.AppendRune(buf, r)
		}
	}
	return string(buf)
}
