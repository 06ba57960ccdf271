package tokenizer

import (
	"strings"
	"testing"
	"time"
)

// Finding special tokens is linear in the text: with several special tokens and one of them
// frequent, each search must not rescan the rest of the text for the others (512 KB took 6 s).
func TestSpecialSearchIsLinear(t *testing.T) {
	vocab, _ := smallVocab()
	n := len(vocab)
	specials := []special{{content: EndOfText, id: n}, {content: "<pad>", id: n + 1}, {content: "<sep>", id: n + 2}, {content: "<mask>", id: n + 3}}
	for _, sp := range specials {
		vocab[sp.content] = sp.id
	}
	tok, err := build(vocab, nil, specials)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("ab<pad>", 512<<10/7)
	scanned := 0
	specialScanHook = func(n int) { scanned += n }
	defer func() { specialScanHook = nil }()
	start := time.Now()
	ids := tok.Encode(text)
	t.Logf("%d bytes with 4 special tokens: %v, %d bytes scanned for specials (%.2fx)", len(text), time.Since(start), scanned, float64(scanned)/float64(len(text)))
	if want := 512 << 10 / 7 * 3; len(ids) != want { // a, b, <pad>
		t.Fatalf("%d ids, want %d", len(ids), want)
	}
	if scanned > 8*len(text) {
		t.Errorf("searching for special tokens scanned %d bytes for %d bytes of text (%.0fx): quadratic", scanned, len(text), float64(scanned)/float64(len(text)))
	}
	// Same tokens as one special at a time.
	for _, s := range []string{"x<mask><pad>y<|endoftext|>", "<pad><pad>", "a<sep>", "<mask>"} {
		var want []int
		rest := s
		for rest != "" {
			best, bi := -1, -1
			for i, sp := range tok.specials {
				if j := strings.Index(rest, sp.content); j >= 0 && (best < 0 || j < best) {
					best, bi = j, i
				}
			}
			if best < 0 {
				want = tok.encodeOrdinary(rest, want)
				break
			}
			want = tok.encodeOrdinary(rest[:best], want)
			want = append(want, tok.specials[bi].id)
			rest = rest[best+len(tok.specials[bi].content):]
		}
		if got := tok.Encode(s); !equalInts(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", s, got, want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
