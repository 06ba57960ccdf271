package experiments

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/gonnsight/gonnsight/display"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/ops"
	"github.com/gonnsight/gonnsight/tensor"
)

// Lens is the logit lens of a prompt: the final layer norm and the unembedding applied to
// the residual stream before the first block ("embed": token plus position embeddings) and
// after every block, as log-probabilities [len(Layers), pos, vocab]. Its last row is the
// model's own prediction.
type Lens struct {
	Layers   []string
	Tokens   []string
	LogProbs []float32
	Vocab    int
	m        *nnsight.Model
}

// LogitLens runs the prompt once and decodes the residual stream at every layer.
func LogitLens(m *nnsight.Model, prompt any) (*Lens, error) {
	if err := m.Load(); err != nil {
		return nil, err
	}
	x, err := ids(m, prompt, "")
	if err != nil {
		return nil, err
	}
	L := m.Config().NLayer
	res, err := m.Trace([][]int{x}, func(t *nnsight.Tracer) {
		points := []*nnsight.Proxy{ResidPre.point(t, 0)}
		for l := 0; l < L; l++ {
			points = append(points, ResidPost.point(t, l))
		}
		for i, p := range points {
			t.Compute(fmt.Sprint("lens.", i), func() *ops.Node { return ops.LogSoftmax(t.LogitLens(p.Node()), -1) })
		}
	})
	if err != nil {
		return nil, err
	}
	lens := &Lens{Layers: append([]string{"embed"}, layerLabels(L)...), Tokens: tokenLabels(m, x), m: m}
	for i := 0; i <= L; i++ {
		d, s, err := res.Float32(fmt.Sprint("lens.", i))
		if err != nil {
			return nil, err
		}
		lens.Vocab = s[len(s)-1]
		lens.LogProbs = append(lens.LogProbs, d...)
	}
	return lens, nil
}

// Tensor is the log-probabilities as a [layer, pos, vocab] tensor.
func (l *Lens) Tensor() *tensor.Tensor {
	return tensor.New(slices.Clone(l.LogProbs), len(l.Layers), len(l.Tokens), l.Vocab).WithAxes("layer", "pos", "vocab")
}

func (l *Lens) row(layer, pos int) []float32 {
	T := len(l.Tokens)
	i := (layer*T + pos) * l.Vocab
	return l.LogProbs[i : i+l.Vocab]
}

// Prob is the probability of token at every (layer, position), as a Map.
func (l *Lens) Prob(token int) (*Map, error) {
	if token < 0 || token >= l.Vocab {
		return nil, fmt.Errorf("experiments: token id %d is outside the vocabulary [0, %d)", token, l.Vocab)
	}
	T := len(l.Tokens)
	data := make([]float32, len(l.Layers)*T)
	for r := range l.Layers {
		for p := 0; p < T; p++ {
			data[r*T+p] = float32(math.Exp(float64(l.row(r, p)[token])))
		}
	}
	return &Map{Data: data, Rows: l.Layers, Cols: l.Tokens, RowTitle: "layer", ColTitle: "position",
		Title: fmt.Sprintf("logit lens: probability of %s", l.tokenString(token))}, nil
}

// Top is the k most likely tokens at a layer row and position, best first.
func (l *Lens) Top(layer, pos, k int) (ids []int, probs []float32) {
	row := l.row(layer, pos)
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
	for _, i := range idx[:min(k, len(idx))] {
		ids = append(ids, i)
		probs = append(probs, float32(math.Exp(float64(row[i]))))
	}
	return ids, probs
}

func (l *Lens) tokenString(id int) string {
	if tok := l.m.Tokenizer(); tok != nil {
		return fmt.Sprintf("%q", tok.TokenString(id))
	}
	return fmt.Sprintf("#%d", id)
}

// Show displays the top token and its probability at every layer and position.
func (l *Lens) Show() {
	top, probs := l.table()
	display.ShowLogitLens(l.Layers, l.Tokens, top, probs, display.LogShading()) // probabilities span decades
}

// String is the lens as a text table.
func (l *Lens) String() string {
	top, probs := l.table()
	return display.LogitLensText(l.Layers, l.Tokens, top, probs)
}

func (l *Lens) table() ([][]string, [][]float32) {
	T := len(l.Tokens)
	top := make([][]string, len(l.Layers))
	probs := make([][]float32, len(l.Layers))
	for r := range l.Layers {
		for p := 0; p < T; p++ {
			ids, ps := l.Top(r, p, 1)
			name := fmt.Sprintf("#%d", ids[0])
			if tok := l.m.Tokenizer(); tok != nil {
				name = tok.TokenString(ids[0])
			}
			top[r] = append(top[r], name)
			probs[r] = append(probs[r], ps[0])
		}
	}
	return top, probs
}
