package nnsight

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// Batch is the model input a trace ran on.
type Batch struct {
	IDs       [][]int // padded token ids (language models)
	Mask      [][]bool
	Positions [][]int
	Lengths   []int
	Rows      [][2]int        // rows of each invoke
	Tensor    *tensors.Tensor // user-defined models
	Padded    bool
	Tokens    [][]string
}

// makeBatch tokenizes and pads the invokes' inputs. Prompt-less invokes add no rows.
func (m *Model) makeBatch(tr *trace) (*Batch, error) {
	if m.lm == nil {
		return m.makeTensorBatch(tr)
	}
	var seqs [][]int
	var masks [][]bool
	var rows [][2]int
	for i, iv := range tr.invokes {
		ids, mk, err := m.toIDs(iv.input)
		if err != nil {
			return nil, fmt.Errorf("invoke %d: %w", i, err)
		}
		iv.ids = ids
		iv.rows = [2]int{len(seqs), len(seqs) + len(ids)}
		rows = append(rows, iv.rows)
		seqs = append(seqs, ids...)
		if mk == nil {
			mk = make([][]bool, len(ids))
		}
		masks = append(masks, mk...)
	}
	b, err := m.padBatch(seqs, masks)
	if err != nil {
		return nil, err
	}
	b.Rows = rows
	return b, nil
}

// padBatch pads token sequences to one length (left by default) with an attention mask and
// position ids that start at each sequence's first token. masks[i], when not nil, is the
// user's attention mask for seqs[i] (false: a key no query may attend to).
func (m *Model) padBatch(seqs [][]int, masks [][]bool) (*Batch, error) {
	b := &Batch{}
	maxLen := 0
	for _, s := range seqs {
		maxLen = max(maxLen, len(s))
	}
	if n := m.spec.MaxPositions; n > 0 && maxLen > n {
		return nil, fmt.Errorf("prompt of %d tokens is longer than the model's context (n_positions=%d)", maxLen, n)
	}
	fill := m.padID()
	for r, s := range seqs {
		pad := maxLen - len(s)
		row := make([]int, maxLen)
		mask := make([]bool, maxLen)
		pos := make([]int, maxLen)
		if pad > 0 {
			b.Padded = true
		}
		off := pad
		if m.opts.padRight {
			off = 0
		}
		for i := range row {
			row[i] = fill
		}
		var user []bool
		if r < len(masks) {
			user = masks[r]
		}
		for i, id := range s {
			row[off+i] = id
			mask[off+i] = user == nil || user[i]
			if !mask[off+i] {
				b.Padded = true // the mask must reach the model
			}
			pos[off+i] = i
		}
		b.IDs = append(b.IDs, row)
		b.Mask = append(b.Mask, mask)
		b.Positions = append(b.Positions, pos)
		b.Lengths = append(b.Lengths, len(s))
		if m.tok != nil {
			toks := make([]string, maxLen)
			for i, id := range row {
				if i >= off && i < off+len(s) {
					toks[i] = m.tok.TokenString(id)
				}
			}
			b.Tokens = append(b.Tokens, toks)
		}
	}
	return b, nil
}

// Tokens is an input of token ids with the user's attention mask (Hugging Face's input_ids
// and attention_mask): AttentionMask[i][j] false hides token j of row i from every query,
// as padding is hidden. Rows may have different lengths; they are padded like prompts.
// Position ids still count every token of a row (as Hugging Face's forward does).
type Tokens struct {
	IDs           [][]int
	AttentionMask [][]bool // nil: every token is visible
}

// toIDs turns an invoke's input into one or more token sequences, and their attention
// masks when the input gives them (nil otherwise).
func (m *Model) toIDs(input any) ([][]int, [][]bool, error) {
	if tk, ok := input.(Tokens); ok {
		return m.tokensInput(tk)
	}
	if tk, ok := input.(*Tokens); ok && tk != nil {
		return m.tokensInput(*tk)
	}
	ids, err := m.toIDsNoMask(input)
	return ids, nil, err
}

func (m *Model) tokensInput(tk Tokens) ([][]int, [][]bool, error) {
	ids, err := m.toIDsNoMask(tk.IDs)
	if err != nil {
		return nil, nil, err
	}
	if tk.AttentionMask == nil {
		return ids, nil, nil
	}
	if len(tk.AttentionMask) != len(ids) {
		return nil, nil, fmt.Errorf("Tokens: %d rows of ids but %d rows of attention mask", len(ids), len(tk.AttentionMask))
	}
	for i := range ids {
		if len(tk.AttentionMask[i]) != len(ids[i]) {
			return nil, nil, fmt.Errorf("Tokens: row %d has %d ids but %d mask values", i, len(ids[i]), len(tk.AttentionMask[i]))
		}
		if !slices.Contains(tk.AttentionMask[i], true) {
			return nil, nil, fmt.Errorf("Tokens: row %d's attention mask hides every token", i)
		}
	}
	return ids, tk.AttentionMask, nil
}

func (m *Model) toIDsNoMask(input any) ([][]int, error) {
	check := func(ids []int) error {
		if len(ids) == 0 {
			return errors.New("empty prompt: it has no tokens")
		}
		for _, id := range ids {
			if id < 0 || id >= m.spec.VocabSize {
				return fmt.Errorf("token id %d is out of range (vocab_size=%d)", id, m.spec.VocabSize)
			}
		}
		return nil
	}
	var out [][]int
	switch v := input.(type) {
	case string:
		if m.tok == nil {
			return nil, fmt.Errorf("%s has no tokenizer: give token ids ([]int)", m.describe())
		}
		out = [][]int{m.tok.Encode(v)}
	case []string:
		if len(v) == 0 {
			return nil, errors.New("empty list of prompts")
		}
		for _, s := range v {
			ids, err := m.toIDsNoMask(s)
			if err != nil {
				return nil, err
			}
			out = append(out, ids...)
		}
	case []int:
		out = [][]int{v}
	case [][]int:
		out = v
	case []int32:
		ids := make([]int, len(v))
		for i, x := range v {
			ids[i] = int(x)
		}
		out = [][]int{ids}
	case nil:
		return nil, errors.New("no input")
	default:
		return nil, fmt.Errorf("unsupported input type %T (want a string, []string, []int, [][]int or nnsight.Tokens)", input)
	}
	for _, ids := range out {
		if err := check(ids); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (m *Model) makeTensorBatch(tr *trace) (*Batch, error) {
	b := &Batch{}
	var parts []*tensors.Tensor
	rows := 0
	for i, iv := range tr.invokes {
		t, err := toTensor(iv.input)
		if err != nil {
			return nil, fmt.Errorf("invoke %d: %w", i, err)
		}
		if t.Rank() == 0 {
			return nil, fmt.Errorf("invoke %d: input must have a batch axis, got a scalar", i)
		}
		n := t.Shape().Dimensions[0]
		iv.rows = [2]int{rows, rows + n}
		b.Rows = append(b.Rows, iv.rows)
		rows += n
		parts = append(parts, t)
	}
	if len(parts) == 1 {
		b.Tensor = parts[0]
		return b, nil
	}
	t, err := concatRows(parts)
	if err != nil {
		return nil, err
	}
	b.Tensor = t
	return b, nil
}

func concatRows(parts []*tensors.Tensor) (*tensors.Tensor, error) {
	first := parts[0].Shape()
	var data []float32
	rows := 0
	for i, p := range parts {
		if p.DType() != dtypes.Float32 {
			return nil, fmt.Errorf("invoke %d: input is %s; user-defined models take float32 inputs", i, p.DType())
		}
		if p.Rank() != first.Rank() || !slices.Equal(p.Shape().Dimensions[1:], first.Dimensions[1:]) {
			return nil, fmt.Errorf("invoke %d: input shape %v does not match invoke 0's %v (all but the batch axis must agree)",
				i, p.Shape().Dimensions, first.Dimensions)
		}
		data = append(data, tensors.MustCopyFlatData[float32](p)...)
		rows += p.Shape().Dimensions[0]
	}
	dims := append([]int{rows}, first.Dimensions[1:]...)
	return tensors.FromFlatDataAndDimensions(data, dims...), nil
}

func intTensor(rows [][]int) *tensors.Tensor {
	if len(rows) == 0 {
		return tensors.FromFlatDataAndDimensions([]int32{}, 0, 0)
	}
	data := make([]int32, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		for _, v := range r {
			data = append(data, int32(v))
		}
	}
	return tensors.FromFlatDataAndDimensions(data, len(rows), len(rows[0]))
}

func boolTensor(rows [][]bool) *tensors.Tensor {
	data := make([]bool, 0, len(rows)*len(rows[0]))
	for _, r := range rows {
		data = append(data, r...)
	}
	return tensors.FromFlatDataAndDimensions(data, len(rows), len(rows[0]))
}
