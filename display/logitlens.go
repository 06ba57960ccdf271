package display

import (
	"fmt"
	"math"
	"strings"
)

// lensCell returns the top token and probability at (layer, position), if given.
func lensCell(top [][]string, probs [][]float32, l, p int) (string, float32, bool, bool) {
	var t string
	var pr float32
	hasT, hasP := false, false
	if l < len(top) && p < len(top[l]) {
		t, hasT = top[l][p], true
	}
	if l < len(probs) && p < len(probs[l]) {
		pr, hasP = probs[l][p], true
	}
	return t, pr, hasT, hasP
}

// lensText shortens a token to fit a logit lens cell.
func lensText(t string) string {
	const most = 12
	if r := []rune(VisibleToken(t)); len(r) > most {
		return string(r[:most-1]) + "…"
	}
	return VisibleToken(t)
}

// logitLensParts builds the logit lens' HTML and SVG.
func logitLensParts(layers []string, tokens []string, top [][]string, probs [][]float32, opts []Option) (string, string) {
	var all []float32
	for _, row := range probs {
		all = append(all, row...)
	}
	o := collect(opts)
	sc := probScale(all, opts...)
	table := logitLensTable(layers, tokens, top, probs, sc)
	rows, cols := len(layers), len(tokens)
	data := make([]float32, rows*cols)
	cellW := 24.0
	for l := range layers {
		for p := range tokens {
			t, pr, _, hasP := lensCell(top, probs, l, p)
			if hasP {
				data[l*cols+p] = pr
			}
			cellW = max(cellW, textWidth(lensText(t))+8)
		}
	}
	rowTitle, colTitle := "layer", "input position"
	if o.rowTitle != "" || o.colTitle != "" {
		rowTitle, colTitle = o.rowTitle, o.colTitle
	}
	valueTitle := o.valueTitle
	if valueTitle == "" {
		valueTitle = "p(top token)"
	}
	pic := picture{scale: sc, valueTitle: valueTitle, panels: []panel{{
		data: data, rows: rows, cols: cols, rowLabels: layers, colLabels: tokens,
		rowTitle: rowTitle, colTitle: colTitle, cellW: int(math.Ceil(cellW)), cellH: 18,
		cellText: func(l, p int) string { t, _, _, _ := lensCell(top, probs, l, p); return lensText(t) },
		missing:  func(l, p int) bool { _, _, _, hasP := lensCell(top, probs, l, p); return !hasP },
	}}}
	svg := pic.svg()
	alt := fmt.Sprintf("logit lens: %d layers x %d positions, top token per cell, %s", rows, cols, sc.describe())
	return pictureHTML("gns-logitlens-picture", alt, svg, table), svg
}

// logitLensHTML renders a logit lens: rows are layers, columns are input positions, and each
// cell shows the layer's top next token at that position, shaded by its probability (0..1, or
// LogShading / RankShading), as a picture above the same table with details on hover. top and
// probs are indexed [layer][position]; missing cells stay empty.
func logitLensHTML(layers []string, tokens []string, top [][]string, probs [][]float32, opts ...Option) string {
	h, _ := logitLensParts(layers, tokens, top, probs, opts)
	return h
}

// logitLensSVG is logitLensHTML's picture alone.
func logitLensSVG(layers []string, tokens []string, top [][]string, probs [][]float32, opts ...Option) string {
	_, s := logitLensParts(layers, tokens, top, probs, opts)
	return s
}

func logitLensTable(layers []string, tokens []string, top [][]string, probs [][]float32, sc scale) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<table class="gns-logitlens" style="%s">`, tableStyle)
	b.WriteString("<thead><tr>")
	fmt.Fprintf(&b, `<th style="%s">layer</th>`, thStyle)
	for p, t := range tokens {
		fmt.Fprintf(&b, `<th style="%s" title="position %d">%s</th>`, thStyle, p, tok(t))
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for l, layer := range layers {
		fmt.Fprintf(&b, `<tr><td style="%s;font-weight:bold">%s</td>`, tdStyle, esc(layer))
		for p := range tokens {
			t, pr, hasT, hasP := lensCell(top, probs, l, p)
			if !hasT && !hasP {
				fmt.Fprintf(&b, `<td style="%s"></td>`, tdStyle)
				continue
			}
			bg := "#ffffff"
			title := fmt.Sprintf("%s, position %d %s: top %s", layer, p, VisibleToken(tokens[p]), VisibleToken(t))
			if hasP {
				bg = sc.color(pr).hex()
				title += " p=" + num(pr)
			}
			fmt.Fprintf(&b, `<td style="%s;background:%s" title="%s">%s</td>`, tdStyle, bg, esc(title), tok(t))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody></table>")
	return b.String()
}

// LogitLensText prints the logit lens as a table of "token (prob)" cells, layers down and
// input positions across.
func LogitLensText(layers []string, tokens []string, top [][]string, probs [][]float32) string {
	headers := []string{"layer"}
	for _, t := range tokens {
		headers = append(headers, VisibleToken(t))
	}
	var rows [][]string
	for l, layer := range layers {
		row := []string{layer}
		for p := range tokens {
			t, pr, hasT, hasP := lensCell(top, probs, l, p)
			cell := VisibleToken(t)
			if hasP {
				if hasT {
					cell += " "
				}
				cell += fmt.Sprintf("(%.2f)", pr)
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	return textTable(headers, rows, nil)
}

// ShowLogitLens displays a logit lens picture and table.
func ShowLogitLens(layers []string, tokens []string, top [][]string, probs [][]float32, opts ...Option) {
	h, svg := logitLensParts(layers, tokens, top, probs, opts)
	showPicture(h, svg, LogitLensText(layers, tokens, top, probs))
}
