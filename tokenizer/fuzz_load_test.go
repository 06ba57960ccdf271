package tokenizer

import (
	"testing"
)

// FuzzTokenizerJSON: any tokenizer.json gives an error or a tokenizer that encodes and
// decodes without panicking, with tables sized by what the file holds.
func FuzzTokenizerJSON(f *testing.F) {
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"added_tokens":[{"id":3,"content":"<|endoftext|>"}]}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]},"added_tokens":[{"id":3,"content":"<pad>","lstrip":true,"rstrip":true}]}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":4294967296},"merges":[]}}`))
	f.Add([]byte(`{"model":{"type":"WordPiece","vocab":{"a":0}}}`))
	f.Add([]byte(`{"model":{"vocab":{"a":-1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := fromTokenizerJSON(data)
		if err != nil {
			return
		}
		if tok.VocabSize() > 2*len(tok.ids)+1024 {
			t.Fatalf("vocab size %d for %d tokens", tok.VocabSize(), len(tok.ids))
		}
		exercise(t, tok)
	})
}

// FuzzVocabMerges: the same for the pair vocab.json + merges.txt.
func FuzzVocabMerges(f *testing.F) {
	f.Add([]byte(`{"a":0,"b":1,"ab":2,"<|endoftext|>":3}`), []byte("#version: 0.2\na b\n"))
	f.Add([]byte(`{"a":0,"b":4294967296}`), []byte("a b\n"))
	f.Add([]byte(`{"a":0}`), []byte("a\n"))
	f.Add([]byte(`[]`), []byte(""))
	f.Fuzz(func(t *testing.T, vocab, merges []byte) {
		tok, err := FromFiles(vocab, merges)
		if err != nil {
			return
		}
		exercise(t, tok)
	})
}

func exercise(t *testing.T, tok *Tokenizer) {
	for _, s := range []string{"", "ab", "a<|endoftext|>b", " <pad> x", "héllo\xff"} {
		ids := tok.Encode(s)
		_, _ = tok.Decode(ids)
	}
	_, _ = tok.Decode([]int{-1, tok.VocabSize(), 0})
}
