package display

import (
	"fmt"
	"strings"
)

// checkAttention validates weights laid out as [heads, seq (queries), seq (keys)].
func checkAttention(weights []float32, heads, seq int, tokens []string) ([]string, error) {
	if heads <= 0 || seq <= 0 {
		return nil, fmt.Errorf("attention needs heads > 0 and seq > 0, got heads=%d seq=%d", heads, seq)
	}
	if len(weights) != heads*seq*seq {
		return nil, fmt.Errorf("attention: %d weights for %d heads x %d x %d (%d values)",
			len(weights), heads, seq, seq, heads*seq*seq)
	}
	return labelsOr(tokens, seq), nil
}

func attentionGrid(weights []float32, heads, seq int, labels []string, head int, small bool) grid {
	data := weights[head*seq*seq : (head+1)*seq*seq]
	g := grid{
		data: data, rows: seq, cols: seq, title: fmt.Sprintf("head %d", head),
		cell: cellSize(seq, seq), scale: probScale(data),
		hover: func(q, k int, v float32) string {
			return fmt.Sprintf("head %d, query %d %s → key %d %s: %s",
				head, q, VisibleToken(labels[q]), k, VisibleToken(labels[k]), num(v))
		},
	}
	if small {
		g.cell = max(3, g.cell/2)
	} else {
		g.rowLabels, g.colLabels, g.legend = labels, labels, true
	}
	return g
}

// AttentionHTML draws one head of attention weights laid out [heads, seq, seq]: query
// positions down, key positions across, tokens on both axes, weights on hover.
func AttentionHTML(weights []float32, heads, seq int, tokens []string, headIndex int) string {
	labels, err := checkAttention(weights, heads, seq, tokens)
	if err != nil {
		return errorHTML("%v", err)
	}
	if headIndex < 0 || headIndex >= heads {
		return errorHTML("attention: no head %d; heads are 0-%d", headIndex, heads-1)
	}
	return gridHTML(attentionGrid(weights, heads, seq, labels, headIndex, false))
}

// AttentionGridHTML draws every head as small multiples titled "head i", on one scale.
func AttentionGridHTML(weights []float32, heads, seq int, tokens []string) string {
	labels, err := checkAttention(weights, heads, seq, tokens)
	if err != nil {
		return errorHTML("%v", err)
	}
	var b strings.Builder
	b.WriteString(`<div class="gns-attention-grid" style="display:flex;flex-wrap:wrap;align-items:flex-start">` + "\n")
	for h := 0; h < heads; h++ {
		g := attentionGrid(weights, heads, seq, labels, h, true)
		g.scale = probScale(weights)
		b.WriteString(gridHTML(g))
		b.WriteByte('\n')
	}
	b.WriteString(`</div>`)
	b.WriteString(probScale(weights).legendHTML())
	return b.String()
}

// AttentionText prints one head's weights as a table, queries down and keys across.
func AttentionText(weights []float32, heads, seq int, tokens []string, headIndex int) string {
	labels, err := checkAttention(weights, heads, seq, tokens)
	if err != nil {
		return errorText("%v", err)
	}
	if headIndex < 0 || headIndex >= heads {
		return errorText("attention: no head %d; heads are 0-%d", headIndex, heads-1)
	}
	return matrixText(weights[headIndex*seq*seq:(headIndex+1)*seq*seq], seq, seq, labels, labels,
		fmt.Sprintf("head %d (query \\ key)", headIndex))
}

// AttentionGridText prints every head's table, one after the other.
func AttentionGridText(weights []float32, heads, seq int, tokens []string) string {
	if _, err := checkAttention(weights, heads, seq, tokens); err != nil {
		return errorText("%v", err)
	}
	parts := make([]string, heads)
	for h := range parts {
		parts[h] = AttentionText(weights, heads, seq, tokens, h)
	}
	return strings.Join(parts, "\n\n")
}

// ShowAttention displays every head's attention pattern.
func ShowAttention(weights []float32, heads, seq int, tokens []string) {
	ShowHTML(AttentionGridHTML(weights, heads, seq, tokens), AttentionGridText(weights, heads, seq, tokens))
}

// ShowAttentionHead displays one head's attention pattern with token labels.
func ShowAttentionHead(weights []float32, heads, seq int, tokens []string, headIndex int) {
	ShowHTML(AttentionHTML(weights, heads, seq, tokens, headIndex),
		AttentionText(weights, heads, seq, tokens, headIndex))
}
