package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

type goldenEntry struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func loadGolden(t testing.TB) []goldenEntry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []goldenEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) < 50 {
		t.Fatalf("golden.json has only %d entries", len(entries))
	}
	return entries
}

func TestGolden(t *testing.T) {
	tok := GPT2()
	for _, e := range loadGolden(t) {
		got := tok.Encode(e.Text)
		if !slices.Equal(got, e.IDs) && !(len(got) == 0 && len(e.IDs) == 0) {
			t.Errorf("Encode(%q):\n got  %v\n want %v", e.Text, got, e.IDs)
		}
		dec, err := tok.Decode(got)
		if err != nil || dec != e.Text {
			t.Errorf("Decode(Encode(%q)) = %q, %v", e.Text, dec, err)
		}
	}
}

func TestGPT2Basics(t *testing.T) {
	tok := GPT2()
	if tok != GPT2() {
		t.Error("GPT2() should return the same shared tokenizer")
	}
	if tok.VocabSize() != 50257 {
		t.Errorf("VocabSize = %d, want 50257", tok.VocabSize())
	}
	if tok.EOS() != 50256 {
		t.Errorf("EOS = %d, want 50256", tok.EOS())
	}
	ids := tok.Encode(" Paris")
	if len(ids) != 1 {
		t.Fatalf("Encode(\" Paris\") = %v, want one token", ids)
	}
	if got := tok.TokenString(ids[0]); got != " Paris" {
		t.Errorf("TokenString = %q", got)
	}
	if got := tok.RawToken(ids[0]); got != "ĠParis" {
		t.Errorf("RawToken = %q", got)
	}
	if tok.TokenString(-1) != "" || tok.TokenString(50257) != "" || tok.RawToken(1<<30) != "" {
		t.Error("out-of-range TokenString/RawToken should be empty")
	}
	if tok.TokenString(50256) != EndOfText || tok.RawToken(50256) != EndOfText {
		t.Error("EOS token string")
	}
	if !bytes.Equal(tok.VocabJSON(), gpt2Vocab) || !bytes.Equal(tok.MergesTXT(), gpt2Merges) {
		t.Error("VocabJSON/MergesTXT should return the embedded files")
	}
}

func TestDecodeOutOfRange(t *testing.T) {
	tok := GPT2()
	for _, id := range []int{-1, 50257, 1 << 40} {
		_, err := tok.Decode([]int{464, id})
		if err == nil {
			t.Fatalf("Decode with id %d: no error", id)
		}
		msg := err.Error()
		if !strings.Contains(msg, "50257") || !strings.Contains(msg, fmt.Sprintf("id %d ", id)) {
			t.Errorf("error %q should name id %d and vocab size 50257", msg, id)
		}
	}
}

// writeFile is a test helper.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadVocabMerges(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "vocab.json"), gpt2Vocab)
	writeFile(t, filepath.Join(dir, "merges.txt"), gpt2Merges)
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := GPT2()
	for _, e := range loadGolden(t)[:20] {
		if got, want := tok.Encode(e.Text), ref.Encode(e.Text); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", e.Text, got, want)
		}
	}
	if tok.EOS() != 50256 || tok.VocabSize() != 50257 {
		t.Errorf("EOS %d VocabSize %d", tok.EOS(), tok.VocabSize())
	}
}

// smallVocab is a tiny byte-level vocabulary: all 256 byte symbols plus a few merges.
func smallVocab() (map[string]int, []string) {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	merges := []string{"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"}
	for _, m := range merges {
		vocab[strings.ReplaceAll(m, " ", "")] = len(vocab)
	}
	return vocab, merges
}

func TestLoadTokenizerJSON(t *testing.T) {
	vocab, merges := smallVocab()
	for _, pairs := range []bool{false, true} {
		var ms []any
		for _, m := range merges {
			if pairs {
				a, b, _ := strings.Cut(m, " ")
				ms = append(ms, []string{a, b})
			} else {
				ms = append(ms, m)
			}
		}
		eos := len(vocab)
		doc := map[string]any{
			"version": "1.0",
			"added_tokens": []map[string]any{
				{"id": eos, "content": EndOfText, "special": true, "lstrip": false, "rstrip": false},
				{"id": eos + 1, "content": "<pad>", "special": true, "lstrip": true, "rstrip": true},
			},
			"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": ms},
		}
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "tokenizer.json"), data)
		tok, err := Load(dir)
		if err != nil {
			t.Fatalf("pairs=%v: %v", pairs, err)
		}
		if tok.EOS() != eos || tok.VocabSize() != eos+2 {
			t.Errorf("EOS %d VocabSize %d", tok.EOS(), tok.VocabSize())
		}
		got := tok.Encode("hello world<|endoftext|>hello  <pad>  x")
		hello, world := vocab["hello"], vocab["Ġworld"]
		want := []int{hello, world, eos, hello, eos + 1, int('x')}
		if !slices.Equal(got, want) {
			t.Errorf("pairs=%v: Encode = %v, want %v", pairs, got, want)
		}
		if s, err := tok.Decode([]int{hello, world, eos}); err != nil || s != "hello world<|endoftext|>" {
			t.Errorf("Decode = %q, %v", s, err)
		}
		// The synthesized files load back into an equivalent tokenizer.
		tok2, err := FromFiles(tok.VocabJSON(), tok.MergesTXT())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(tok.MergesTXT(), []byte("#version: 0.2\nh e\n")) {
			t.Errorf("MergesTXT = %q", tok.MergesTXT()[:30])
		}
		if g := tok2.Encode("hello world<|endoftext|>"); !slices.Equal(g, []int{hello, world, eos}) {
			t.Errorf("reloaded Encode = %v", g)
		}
		if tok2.RawToken(eos+1) != "<pad>" {
			t.Errorf("reloaded RawToken(pad) = %q", tok2.RawToken(eos+1))
		}
	}
}

func TestLoadMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if err == nil {
		t.Fatal("Load of empty dir: no error")
	}
	for _, want := range []string{dir, "tokenizer.json", "vocab.json", "merges.txt"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	writeFile(t, filepath.Join(dir, "vocab.json"), gpt2Vocab)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "merges.txt") {
		t.Errorf("Load without merges.txt: %v", err)
	}
	writeFile(t, filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\na b c\n"))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Load with bad merges.txt: %v", err)
	}
	writeFile(t, filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"WordPiece","vocab":{"a":0}}}`))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "WordPiece") {
		t.Errorf("Load with WordPiece tokenizer.json: %v", err)
	}
}

// TestPieces checks the pre-tokenizer on the tricky whitespace cases directly.
func TestPieces(t *testing.T) {
	cases := map[string][]string{
		"a    b":         {"a", "   ", " b"},
		"a \n b":         {"a", " \n", " b"},
		"a\n\nb":         {"a", "\n", "\n", "b"},
		"\n\n":           {"\n\n"},
		"x   ":           {"x", "   "},
		" 'll":           {" '", "ll"},
		"I'm":            {"I", "'m"},
		"?'s":            {"?'", "s"},
		"3.14":           {"3", ".", "14"},
		" 🤗x":            {" 🤗", "x"},
		"a\xffb":         {"a", "\xff", "b"},
		" \t\nfoo":       {" \t", "\n", "foo"},
		"\u00a0\u00a0hi": {"\u00a0", "\u00a0", "hi"},
	}
	for in, want := range cases {
		var got []string
		for s := in; len(s) > 0; {
			n := nextPiece(s)
			got = append(got, s[:n])
			s = s[n:]
		}
		if !slices.Equal(got, want) {
			t.Errorf("pieces(%q) = %q, want %q", in, got, want)
		}
	}
}

// naiveBPE is OpenAI's quadratic merge loop, to cross-check the heap-based one.
func naiveBPE(tok *Tokenizer, piece string) []int {
	var syms []int32
	for i := 0; i < len(piece); i++ {
		syms = append(syms, tok.byteSym[piece[i]])
	}
	for len(syms) > 1 {
		best, bestRank := -1, int32(1<<31-1)
		for i := 0; i+1 < len(syms); i++ {
			if m, ok := tok.merges[pairKey(syms[i], syms[i+1])]; ok && m.rank < bestRank {
				best, bestRank = i, m.rank
			}
		}
		if best < 0 {
			break
		}
		a, b := syms[best], syms[best+1]
		res := tok.merges[pairKey(a, b)].result
		var next []int32
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				next = append(next, res)
				i++
			} else {
				next = append(next, syms[i])
			}
		}
		syms = next
	}
	var out []int
	for _, s := range syms {
		out = tok.emit(s, out)
	}
	return out
}

func TestBPEMatchesNaive(t *testing.T) {
	tok := GPT2()
	rng := rand.New(rand.NewSource(1))
	alphabet := []string{"a", "b", "e", "r", "t", "s", " ", "é", "東", "🤗", "0", "ing", "the", "ation"}
	for i := 0; i < 3000; i++ {
		var sb strings.Builder
		for n := rng.Intn(40) + 1; n > 0; n-- {
			sb.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		s := sb.String()
		if got, want := tok.bpe(s, nil), naiveBPE(tok, s); !slices.Equal(got, want) {
			t.Fatalf("bpe(%q) = %v, naive %v", s, got, want)
		}
	}
	long := strings.Repeat("abracadabra", 300)
	if got, want := tok.bpe(long, nil), naiveBPE(tok, long); !slices.Equal(got, want) {
		t.Fatalf("bpe(long) differs from naive")
	}
}

func TestRoundTripInvalidUTF8(t *testing.T) {
	tok := GPT2()
	for _, s := range []string{"\xff", "a\xc3", "\xe6\x9d", "ok \x80\x81 <|endoftext|>\xff"} {
		ids := tok.Encode(s)
		if got, err := tok.Decode(ids); err != nil || got != s {
			t.Errorf("Decode(Encode(%q)) = %q, %v", s, got, err)
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := GPT2()
	entries := loadGolden(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range entries {
				if got := tok.Encode(e.Text); !slices.Equal(got, e.IDs) && len(e.IDs) > 0 {
					t.Errorf("concurrent Encode(%q) mismatch", e.Text)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "Hello, world!", "a    b  ", "I'm 🤗 東京\n\n\t", "<|endoftext|>x", "3.14 'll"} {
		f.Add(s)
	}
	tok := GPT2()
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip()
		}
		ids := tok.Encode(s)
		got, err := tok.Decode(ids)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	tok := GPT2()
	var sb strings.Builder
	for _, e := range loadGolden(b) {
		sb.WriteString(e.Text)
		sb.WriteByte(' ')
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.Encode(text)
	}
}

// A vocabulary id far beyond the number of tokens the file holds is refused before any
// table is sized by it (2^32 would be a fatal out-of-memory).
func TestHugeVocabID(t *testing.T) {
	start := time.Now()
	_, err := FromFiles([]byte(`{"a": 0, "b": 4294967296}`), []byte("#version: 0.2\n"))
	if err == nil || !strings.Contains(err.Error(), "4294967296") || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("want an error naming the token and its id, got %v", err)
	}
	_, err = fromTokenizerJSON([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"added_tokens":[{"id":4294967296,"content":"<x>"}]}`))
	if err == nil || !strings.Contains(err.Error(), "4294967296") {
		t.Errorf("added token: want an error naming its id, got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}
