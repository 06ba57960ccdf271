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

// headTitle names a head, and its layer when the Layer option gives it.
func headTitle(o options, head int) string {
	if o.hasLayer {
		return fmt.Sprintf("layer %d, head %d", o.layer, head)
	}
	return fmt.Sprintf("head %d", head)
}

func attentionGrid(weights []float32, seq int, labels []string, head int, small bool, sc scale, o options) grid {
	data := weights[head*seq*seq : (head+1)*seq*seq]
	title := headTitle(o, head)
	g := grid{
		data: data, rows: seq, cols: seq, title: title,
		cell: cellSize(seq, seq), scale: sc,
		hover: func(q, k int, v float32) string {
			return fmt.Sprintf("%s, query %d %s → key %d %s: %s",
				title, q, VisibleToken(labels[q]), k, VisibleToken(labels[k]), num(v))
		},
	}
	if small {
		g.cell = max(3, g.cell/2)
	} else {
		g.rowLabels, g.colLabels = labels, labels
	}
	return g
}

// attentionPanel is one head's panel of the picture; small panels (the grid of all heads)
// keep token labels only while their cells are big enough to read them.
func attentionPanel(weights []float32, seq int, labels []string, head int, small bool, o options) panel {
	cell := cellSize(seq, seq)
	if small {
		cell = max(3, cell/2)
	}
	p := panel{title: headTitle(o, head), data: weights[head*seq*seq : (head+1)*seq*seq], rows: seq, cols: seq,
		rowTitle: "query", colTitle: "key", cellW: cell, cellH: cell}
	if o.rowTitle != "" || o.colTitle != "" {
		p.rowTitle, p.colTitle = o.rowTitle, o.colTitle
	}
	if cell >= 9 {
		p.rowLabels, p.colLabels = labels, labels
	}
	return p
}

func attentionValueTitle(o options) string {
	if o.valueTitle != "" {
		return o.valueTitle
	}
	return "attention weight"
}

// attentionParts builds one head's (head >= 0) or every head's (head < 0) HTML and SVG.
func attentionParts(weights []float32, heads, seq int, tokens []string, head int, opts []Option) (string, string) {
	labels, err := checkAttention(weights, heads, seq, tokens)
	if err != nil {
		return errorHTML("%v", err), ""
	}
	o := collect(opts)
	if head >= heads {
		return errorHTML("attention: no head %d; heads are 0-%d", head, heads-1), ""
	}
	if head >= 0 {
		sc := probScale(weights[head*seq*seq:(head+1)*seq*seq], opts...)
		pic := picture{scale: sc, valueTitle: attentionValueTitle(o),
			panels: []panel{attentionPanel(weights, seq, labels, head, false, o)}}
		svg := pic.svg()
		alt := fmt.Sprintf("attention, %s: %d query x %d key positions, %s", headTitle(o, head), seq, seq, sc.describe())
		return pictureHTML("gns-heatmap", alt, svg, gridHTML(attentionGrid(weights, seq, labels, head, false, sc, o))), svg
	}
	sc := probScale(weights, opts...)
	pic := picture{scale: sc, valueTitle: attentionValueTitle(o), perRow: 4}
	var grids strings.Builder
	grids.WriteString(`<div class="gns-attention-grids" style="display:flex;flex-wrap:wrap;align-items:flex-start">` + "\n")
	for h := 0; h < heads; h++ {
		pic.panels = append(pic.panels, attentionPanel(weights, seq, labels, h, true, o))
		grids.WriteString(gridHTML(attentionGrid(weights, seq, labels, h, true, sc, o)))
		grids.WriteByte('\n')
	}
	grids.WriteString(`</div>`)
	svg := pic.svg()
	what := "every head"
	if o.hasLayer {
		what = fmt.Sprintf("layer %d, every head", o.layer)
	}
	alt := fmt.Sprintf("attention, %s (%d): %d query x %d key positions, %s", what, heads, seq, seq, sc.describe())
	return pictureHTML("gns-attention-grid", alt, svg, grids.String()), svg
}

// attentionHTML draws one head of attention weights laid out [heads, seq, seq] as a picture
// (queries down, keys across, tokens on both axes, a colour bar over 0..1) above the cells with
// their weights on hover. Layer(l) puts the layer in the title; Axes, ValueTitle and the scale
// options of heatmapHTML apply.
func attentionHTML(weights []float32, heads, seq int, tokens []string, headIndex int, opts ...Option) string {
	if headIndex < 0 {
		return errorHTML("attention: no head %d; heads are 0-%d", headIndex, heads-1)
	}
	h, _ := attentionParts(weights, heads, seq, tokens, headIndex, opts)
	return h
}

// attentionSVG is attentionHTML's picture alone ("" when the input is malformed).
func attentionSVG(weights []float32, heads, seq int, tokens []string, headIndex int, opts ...Option) string {
	if headIndex < 0 {
		return ""
	}
	_, s := attentionParts(weights, heads, seq, tokens, headIndex, opts)
	return s
}

// attentionGridHTML draws every head as small multiples titled "head i" (or "layer l, head i"
// with Layer), on one scale.
func attentionGridHTML(weights []float32, heads, seq int, tokens []string, opts ...Option) string {
	h, _ := attentionParts(weights, heads, seq, tokens, -1, opts)
	return h
}

// attentionGridSVG is attentionGridHTML's picture alone ("" when the input is malformed).
func attentionGridSVG(weights []float32, heads, seq int, tokens []string, opts ...Option) string {
	_, s := attentionParts(weights, heads, seq, tokens, -1, opts)
	return s
}

// attentionText prints one head's weights as a table, queries down and keys across.
func attentionText(weights []float32, heads, seq int, tokens []string, headIndex int, opts ...Option) string {
	labels, err := checkAttention(weights, heads, seq, tokens)
	if err != nil {
		return errorText("%v", err)
	}
	if headIndex < 0 || headIndex >= heads {
		return errorText("attention: no head %d; heads are 0-%d", headIndex, heads-1)
	}
	return matrixText(weights[headIndex*seq*seq:(headIndex+1)*seq*seq], seq, seq, labels, labels,
		headTitle(collect(opts), headIndex)+" (query \\ key)")
}

// attentionGridText prints every head's table, one after the other.
func attentionGridText(weights []float32, heads, seq int, tokens []string, opts ...Option) string {
	if _, err := checkAttention(weights, heads, seq, tokens); err != nil {
		return errorText("%v", err)
	}
	parts := make([]string, heads)
	for h := range parts {
		parts[h] = attentionText(weights, heads, seq, tokens, h, opts...)
	}
	return strings.Join(parts, "\n\n")
}

// ShowAttention displays every head's attention pattern.
func ShowAttention(weights []float32, heads, seq int, tokens []string, opts ...Option) {
	h, svg := attentionParts(weights, heads, seq, tokens, -1, opts)
	showPicture(h, svg, attentionGridText(weights, heads, seq, tokens, opts...))
}

// ShowAttentionHead displays one head's attention pattern with token labels.
func ShowAttentionHead(weights []float32, heads, seq int, tokens []string, headIndex int, opts ...Option) {
	h, svg := "", ""
	if headIndex < 0 {
		h = errorHTML("attention: no head %d; heads are 0-%d", headIndex, heads-1)
	} else {
		h, svg = attentionParts(weights, heads, seq, tokens, headIndex, opts)
	}
	showPicture(h, svg, attentionText(weights, heads, seq, tokens, headIndex, opts...))
}
