package train

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/gonnsight/gonnsight/tokenizer"
)

// Data is the tokenized corpus: documents joined by the end-of-text token.
type Data struct {
	Train, Val []int32
	Vocab, EOS int
	// TrainDocs and ValDocs name the corpus files of each part.
	TrainDocs, ValDocs []string
}

// IsHeldOut says which documents are held out for validation: every 25th file (ca01, cb02,
// ...: 20 of 500, 4 %, from every genre).
func IsHeldOut(i int) bool { return i%25 == 0 }

// Tokenize encodes the documents and splits them into training and held-out streams.
func Tokenize(docs []Doc, tok *tokenizer.Tokenizer) *Data {
	d := &Data{Vocab: tok.VocabSize(), EOS: tok.EOS()}
	for i, doc := range docs {
		ids := tok.Encode(doc.Text)
		dst := &d.Train
		if IsHeldOut(i) {
			dst = &d.Val
			d.ValDocs = append(d.ValDocs, doc.Name)
		} else {
			d.TrainDocs = append(d.TrainDocs, doc.Name)
		}
		for _, id := range ids {
			*dst = append(*dst, int32(id))
		}
		*dst = append(*dst, int32(d.EOS))
	}
	return d
}

// Mix is what one step's rows look like.
type Mix struct {
	Batch, Ctx int     // rows of ctx+1 tokens
	Repeat     float64 // the fraction of rows that repeat a segment
	SegMin     int     // segment lengths, SegMin to SegMax tokens
	SegMax     int
	// Once: a repeated row is text with the segment and one copy of it somewhere in it,
	// instead of the segment repeated until the row is full.
	Once bool
	// RandomVocab, when not 0, draws random segment tokens from the ids below it;
	// RandomOnly makes every segment random tokens (else half are spans of the corpus).
	RandomVocab int
	RandomOnly  bool
}

// Batch draws the rows of one training step: [batch, ctx+1] ids (inputs and, shifted by one,
// targets). The rows depend only on the seed and the step, so a resumed run sees the same
// batches as an uninterrupted one. A fraction repeat of the rows repeat a segment (random
// tokens or a span of the corpus, SegMin to SegMax tokens long) until the row is full:
// predicting a repeat needs an induction head, and these rows make one worth learning early.
func (d *Data) Batch(seed uint64, step int, m Mix) []int32 {
	batch, ctx, repeat := m.Batch, m.Ctx, m.Repeat
	rng := rand.New(rand.NewPCG(seed, uint64(step)*0x9E3779B97F4A7C15+1))
	n := ctx + 1
	out := make([]int32, batch*n)
	for b := 0; b < batch; b++ {
		row := out[b*n : (b+1)*n]
		if rng.Float64() >= repeat {
			start := rng.IntN(len(d.Train) - n)
			copy(row, d.Train[start:start+n])
			continue
		}
		segLen := m.SegMin + rng.IntN(m.SegMax-m.SegMin+1)
		seg := make([]int32, segLen)
		if m.RandomOnly || rng.IntN(2) == 0 {
			for i := range seg {
				seg[i] = d.randomToken(rng, m.RandomVocab)
			}
		} else {
			start := rng.IntN(len(d.Train) - segLen)
			copy(seg, d.Train[start:start+segLen])
		}
		if m.Once { // text, with the segment and its copy somewhere in it
			start := rng.IntN(len(d.Train) - n)
			copy(row, d.Train[start:start+n])
			segLen = min(segLen, n/2)
			at := rng.IntN(n - 2*segLen + 1)
			copy(row[at:], seg[:segLen])
			copy(row[at+segLen:], seg[:segLen])
			continue
		}
		for i := range row {
			row[i] = seg[i%segLen]
		}
	}
	return out
}

// randomToken is a uniformly drawn id other than end-of-text, below below (0: any id).
func (d *Data) randomToken(rng *rand.Rand, below int) int32 {
	if below <= 0 {
		below = d.Vocab
	}
	for {
		if id := int32(rng.IntN(below)); int(id) != d.EOS {
			return id
		}
	}
}

// ValWindows cuts the held-out stream into consecutive windows of ctx+1 tokens (at most
// max of them, evenly spread): the fixed set every evaluation uses.
func (d *Data) ValWindows(ctx, max int) [][]int32 {
	n := ctx + 1
	total := len(d.Val) / n
	if total == 0 {
		return nil
	}
	if max <= 0 || max > total {
		max = total
	}
	out := make([][]int32, max)
	for i := range out {
		start := (i * total / max) * n
		out[i] = d.Val[start : start+n]
	}
	return out
}

// InductionRows are count rows of a random segment of segLen tokens (end-of-text excluded)
// followed by the same segment again, drawn from seed: the induction test. A model that
// copies has a much lower loss on the second copy than on the first.
func InductionRows(vocab, eos, count, segLen int, seed uint64) [][]int32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]int32, count)
	for r := range out {
		row := make([]int32, 2*segLen)
		for i := 0; i < segLen; i++ {
			for {
				id := int32(rng.IntN(vocab))
				if int(id) != eos {
					row[i] = id
					break
				}
			}
			row[segLen+i] = row[i]
		}
		out[r] = row
	}
	return out
}

// UnigramLoss is the cross-entropy (nats per token) of the held-out stream under the
// training stream's token frequencies (add-one smoothed): the loss of the best model that
// ignores context, which a language model must beat. Targets are scored as in training:
// every token after the first of a window.
func (d *Data) UnigramLoss() float64 {
	counts := make([]float64, d.Vocab)
	for _, id := range d.Train {
		counts[id]++
	}
	total := float64(len(d.Train)) + float64(d.Vocab)
	sum := 0.0
	for _, id := range d.Val {
		sum -= math.Log((counts[id] + 1) / total)
	}
	return sum / float64(len(d.Val))
}

// DumpTokens learns the vocabulary as Run does and writes the tokenized streams to dir as
// little-endian int32 files (train.i32, heldout.i32) with tokens.json (vocabulary size,
// end-of-text id): for trying training recipes outside Go (scripts/induction_probe.py).
func DumpTokens(docs []Doc, o Options, dir string) error {
	_, d, _, err := learnVocabulary(docs, o.Vocab)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, ids := range map[string][]int32{"train.i32": d.Train, "heldout.i32": d.Val} {
		buf := make([]byte, 4*len(ids))
		for i, id := range ids {
			binary.LittleEndian.PutUint32(buf[4*i:], uint32(id))
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			return err
		}
	}
	meta, _ := json.Marshal(map[string]int{"vocab": d.Vocab, "eos": d.EOS})
	return os.WriteFile(filepath.Join(dir, "tokens.json"), meta, 0o644)
}
