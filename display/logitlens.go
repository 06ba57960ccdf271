package display

import (
	"fmt"
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

// LogitLensHTML renders a logit lens: rows are layers, columns are input positions, and each
// cell shows the layer's top next token at that position, shaded by its probability, with
// details on hover. top and probs are indexed [layer][position]; missing cells stay empty.
func LogitLensHTML(layers []string, tokens []string, top [][]string, probs [][]float32) string {
	var all []float32
	for _, row := range probs {
		all = append(all, row...)
	}
	sc := probScale(all)
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
	b.WriteString(sc.legendHTML())
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

// ShowLogitLens displays a logit lens table.
func ShowLogitLens(layers []string, tokens []string, top [][]string, probs [][]float32) {
	ShowHTML(LogitLensHTML(layers, tokens, top, probs), LogitLensText(layers, tokens, top, probs))
}
