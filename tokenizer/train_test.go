package tokenizer

import (
	"bytes"
	"strings"
	"testing"
)

func TestTrainRoundTripAndDeterminism(t *testing.T) {
	texts := []string{
		"The jury said the election was conducted well. The jury thanked the city.",
		"It was the best of times, it was the worst of times; the jury's 1964 report: ``no evidence''.",
		strings.Repeat("the theory of the thing ", 20),
	}
	tok, err := Train(texts, 270)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 270 {
		t.Fatalf("VocabSize = %d, want 270", tok.VocabSize())
	}
	if tok.EOS() != 269 {
		t.Errorf("EOS = %d, want the last id 269", tok.EOS())
	}
	// Frequent words become single tokens.
	if ids := tok.Encode(" the"); len(ids) != 1 {
		t.Errorf("\" the\" encodes to %v, want one token", ids)
	}
	for _, s := range append(texts, "unseen wörds ✓ and <|endoftext|> too", "") {
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("id %d out of range", id)
			}
		}
		back, err := tok.Decode(ids)
		if err != nil || back != s {
			t.Errorf("Decode(Encode(%q)) = %q, %v", s, back, err)
		}
	}
	// Same input, same files; the files load back to the same tokenizer.
	tok2, _ := Train(texts, 270)
	if !bytes.Equal(tok.VocabJSON(), tok2.VocabJSON()) || !bytes.Equal(tok.MergesTXT(), tok2.MergesTXT()) {
		t.Error("two trainings on the same texts gave different files")
	}
	tok3, err := FromFiles(tok.VocabJSON(), tok.MergesTXT())
	if err != nil {
		t.Fatal(err)
	}
	s := texts[1]
	if a, b := tok.Encode(s), tok3.Encode(s); !equalInts(a, b) {
		t.Errorf("reloaded tokenizer encodes differently: %v vs %v", a, b)
	}
}

func TestTrainStopsWhenNothingRepeats(t *testing.T) {
	tok, err := Train([]string{"ab"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 257 { // no pair occurs twice: bytes and <|endoftext|>
		t.Errorf("VocabSize = %d, want 257", tok.VocabSize())
	}
	if _, err := Train(nil, 100); err == nil || !strings.Contains(err.Error(), "at least 257") {
		t.Errorf("Train(vocab 100) error = %v, want one naming the minimum", err)
	}
}
