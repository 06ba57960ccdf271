package display

import (
	"fmt"

	"github.com/gonnsight/gonnsight/tensor"
)

// The renderers for values of package tensor: the same displays, taking a *tensor.Tensor
// instead of flat data and sizes. A tensor of the wrong shape renders as an error naming
// the shape that was expected.

// ShowTensorOf displays a tensor as numpy-like text.
func ShowTensorOf(t *tensor.Tensor) {
	data, dims := t.Float32()
	ShowTensor(data, dims)
}

// matrixOf is t as [rows, cols], leading axes of size 1 dropped ([1, layer, pos] is a matrix).
func matrixOf(what string, t *tensor.Tensor) ([]float32, int, int, error) {
	if t == nil {
		return nil, 0, 0, fmt.Errorf("%s: nil tensor", what)
	}
	dims := t.Shape()
	for len(dims) > 2 && dims[0] == 1 {
		dims = dims[1:]
	}
	if len(dims) != 2 {
		return nil, 0, 0, fmt.Errorf("%s: need a [rows, cols] tensor, got shape %v", what, t.Shape())
	}
	return t.Data(), dims[0], dims[1], nil
}

// heatmapOfHTML is heatmapHTML of a [rows, cols] tensor.
func heatmapOfHTML(t *tensor.Tensor, rowLabels, colLabels []string, title string, opts ...Option) string {
	data, rows, cols, err := matrixOf("heatmap", t)
	if err != nil {
		return errorHTML("%v", err)
	}
	return heatmapHTML(data, rows, cols, rowLabels, colLabels, title, opts...)
}

// ShowHeatmapOf displays a [rows, cols] tensor as a heatmap (ShowHeatmap).
func ShowHeatmapOf(t *tensor.Tensor, rowLabels, colLabels []string, title string, opts ...Option) {
	data, rows, cols, err := matrixOf("heatmap", t)
	if err != nil {
		ShowHTML(errorHTML("%v", err), errorText("%v", err))
		return
	}
	ShowHeatmap(data, rows, cols, rowLabels, colLabels, title, opts...)
}

// ShowAttentionOf displays attention weights [head, query_pos, key_pos] (or with a batch
// axis of size 1 in front, as attn_weights are saved) as one heatmap per head.
func ShowAttentionOf(weights *tensor.Tensor, tokens []string, opts ...Option) {
	dims := weights.Shape()
	if len(dims) == 4 && dims[0] == 1 {
		dims = dims[1:]
	}
	if len(dims) != 3 || dims[1] != dims[2] {
		err := fmt.Errorf("attention: need [head, query_pos, key_pos] weights (or [1, head, query_pos, key_pos]), got shape %v", weights.Shape())
		ShowHTML(errorHTML("%v", err), errorText("%v", err))
		return
	}
	ShowAttention(weights.Data(), dims[0], dims[1], tokens, opts...)
}

// TopKOf is TopK of a vector of logits ([vocab], or with leading axes of size 1).
func TopKOf(logits *tensor.Tensor, k int) []Candidate {
	return TopK(logits.Reshape(-1).Data(), k)
}

// ShowLogitLensOf displays a logit lens from lens logits [layer, pos, vocab]: each cell is
// the layer's most likely next token at that position and its probability. layers and
// tokens label the rows and columns; tokenString turns an id into its text.
func ShowLogitLensOf(lens *tensor.Tensor, layers, tokens []string, tokenString func(int) string, opts ...Option) {
	if lens == nil || lens.Rank() != 3 {
		err := fmt.Errorf("logit lens: need [layer, pos, vocab] logits, got %v", shapeOf(lens))
		ShowHTML(errorHTML("%v", err), errorText("%v", err))
		return
	}
	probs, ids := lens.Softmax(-1).TopK(1)
	top := make([][]string, lens.Dim(0))
	p := make([][]float32, lens.Dim(0))
	for l := range top {
		for _, id := range ids.At(l).Ints() {
			top[l] = append(top[l], tokenOf(tokenString, id))
		}
		p[l] = probs.At(l).Data()
	}
	ShowLogitLens(layers, tokens, top, p, opts...)
}

func shapeOf(t *tensor.Tensor) string {
	if t == nil {
		return "a nil tensor"
	}
	return fmt.Sprintf("shape %v", t.Shape())
}
