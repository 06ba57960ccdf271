package display

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// edgeItems values are kept at each end of an axis longer than summarizeAbove.
const (
	summarizeAbove = 6
	edgeItems      = 3
)

// tensorText prints a float32 tensor like numpy: nested brackets, values aligned on their
// decimal point, axes longer than 6 summarized with "...", then a shape and dtype line.
func tensorText(data []float32, dims []int) string {
	size := 1
	for _, d := range dims {
		if d < 0 {
			return errorText("negative dimension in shape %v", dims)
		}
		size *= d
	}
	if size != len(data) {
		return errorText("%d values do not fill shape %v (%d values)", len(data), dims, size)
	}
	return formatArray(data, dims) + "\n" + fmt.Sprintf("shape=%v dtype=float32", dims)
}

// tensorHTML is tensorText in a <pre> block.
func tensorHTML(data []float32, dims []int) string {
	return preHTML(tensorText(data, dims))
}

// ShowTensor displays a tensor as numpy-like text.
func ShowTensor(data []float32, dims []int) {
	ShowHTML(tensorHTML(data, dims), tensorText(data, dims))
}

// shownIndices lists the indices printed along an axis of length d; -1 marks "...".
func shownIndices(d int) []int {
	var idx []int
	if d > summarizeAbove {
		for i := 0; i < edgeItems; i++ {
			idx = append(idx, i)
		}
		idx = append(idx, -1)
		for i := d - edgeItems; i < d; i++ {
			idx = append(idx, i)
		}
		return idx
	}
	for i := 0; i < d; i++ {
		idx = append(idx, i)
	}
	return idx
}

func formatArray(data []float32, dims []int) string {
	if len(data) == 0 {
		return "[]"
	}
	strides := make([]int, len(dims))
	s := 1
	for i := len(dims) - 1; i >= 0; i-- {
		strides[i] = s
		s *= dims[i]
	}
	// The flat offsets of the values printed.
	var shown []int
	var collect func(axis, off int)
	collect = func(axis, off int) {
		if axis == len(dims) {
			shown = append(shown, off)
			return
		}
		for _, i := range shownIndices(dims[axis]) {
			if i >= 0 {
				collect(axis+1, off+i*strides[axis])
			}
		}
	}
	collect(0, 0)
	vals := make([]float32, len(shown))
	for i, off := range shown {
		vals[i] = data[off]
	}
	strs := formatValues(vals)
	text := make(map[int]string, len(shown))
	for i, off := range shown {
		text[off] = strs[i]
	}
	var render func(axis, off int) string
	render = func(axis, off int) string {
		if axis == len(dims) {
			return text[off]
		}
		var parts []string
		for _, i := range shownIndices(dims[axis]) {
			if i < 0 {
				parts = append(parts, "...")
			} else {
				parts = append(parts, render(axis+1, off+i*strides[axis]))
			}
		}
		sep := " "
		if axis < len(dims)-1 {
			sep = strings.Repeat("\n", len(dims)-axis-1) + strings.Repeat(" ", axis+1)
		}
		return "[" + strings.Join(parts, sep) + "]"
	}
	return render(0, 0)
}

// formatValues formats values as numpy does with its default options: positional notation
// with up to 8 decimals, or scientific when the magnitudes are very large, very small or
// spread over more than three orders; all padded to one width.
func formatValues(vals []float32) []string {
	minAbs, maxAbs := math.Inf(1), 0.0
	for _, v := range vals {
		a := math.Abs(float64(v))
		if a == 0 || math.IsNaN(a) || math.IsInf(a, 0) {
			continue
		}
		minAbs, maxAbs = math.Min(minAbs, a), math.Max(maxAbs, a)
	}
	sci := maxAbs > 0 && (maxAbs >= 1e8 || minAbs < 1e-4 || maxAbs/minAbs > 1e3)
	out := make([]string, len(vals))
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	if sci {
		prec := 0
		for _, v := range vals {
			if finite(v) {
				m := strconv.FormatFloat(float64(v), 'e', -1, 32)
				m = m[:strings.IndexByte(m, 'e')]
				if i := strings.IndexByte(m, '.'); i >= 0 {
					prec = max(prec, len(m)-i-1)
				}
			}
		}
		prec = min(prec, 8)
		for i, v := range vals {
			if finite(v) {
				s := strconv.FormatFloat(float64(v), 'e', prec, 32)
				if prec == 0 {
					s = strings.Replace(s, "e", ".e", 1)
				}
				out[i] = s
			}
		}
	} else {
		intParts, fracParts := make([]string, len(vals)), make([]string, len(vals))
		intW, fracW := 0, 0
		for i, v := range vals {
			if !finite(v) {
				continue
			}
			s := strconv.FormatFloat(float64(v), 'f', -1, 32)
			if j := strings.IndexByte(s, '.'); j >= 0 && len(s)-j-1 > 8 {
				s = strings.TrimRight(strconv.FormatFloat(float64(v), 'f', 8, 32), "0")
			}
			ip, fp, _ := strings.Cut(s, ".")
			intParts[i], fracParts[i] = ip, fp
			intW, fracW = max(intW, len(ip)), max(fracW, len(fp))
		}
		for i, v := range vals {
			if finite(v) {
				out[i] = padLeft(intParts[i], intW) + "." + padRight(fracParts[i], fracW)
			}
		}
	}
	w := 0
	for i, v := range vals {
		if !finite(v) {
			switch {
			case math.IsNaN(float64(v)):
				out[i] = "nan"
			case v > 0:
				out[i] = "inf"
			default:
				out[i] = "-inf"
			}
		}
		w = max(w, len(out[i]))
	}
	for i := range out {
		out[i] = padLeft(out[i], w)
	}
	return out
}

// checkMatrix validates a rows x cols matrix.
func checkMatrix(data []float32, rows, cols int) error {
	if rows < 0 || cols < 0 {
		return fmt.Errorf("negative size %d x %d", rows, cols)
	}
	if rows*cols != len(data) {
		return fmt.Errorf("%d values for a %d x %d matrix (%d values)", len(data), rows, cols, rows*cols)
	}
	return nil
}

// labelsOr returns labels when there is one per item, else the indices.
func labelsOr(labels []string, n int) []string {
	if len(labels) == n {
		return labels
	}
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}

// grid describes one coloured matrix for gridHTML.
type grid struct {
	data       []float32
	rows, cols int
	rowLabels  []string // nil: no row labels
	colLabels  []string // nil: no column labels
	title      string
	cell       int // cell size in pixels
	scale      scale
	hover      func(r, c int, v float32) string
}

// cellSize shrinks cells for large matrices so that they stay on screen.
func cellSize(rows, cols int) int {
	switch n := max(rows, cols); {
	case n <= 24:
		return 18
	case n <= 64:
		return 10
	default:
		return 5
	}
}

// gridHTML draws a matrix as a CSS grid of coloured cells, labels along the axes, values on
// hover: the interactive view under a picture.
func gridHTML(g grid) string {
	var b strings.Builder
	b.WriteString(`<div class="gns-grid" style="display:inline-block;margin:4px 8px 4px 0;vertical-align:top;color:#000">`)
	if g.title != "" {
		fmt.Fprintf(&b, `<div style="font:bold 12px sans-serif;margin-bottom:2px">%s</div>`, esc(g.title))
	}
	colsTemplate := fmt.Sprintf("repeat(%d,%dpx)", g.cols, g.cell)
	if g.rowLabels != nil {
		colsTemplate = "auto " + colsTemplate
	}
	rowsTemplate := ""
	if g.colLabels != nil {
		rowsTemplate = "grid-template-rows:auto;"
	}
	fmt.Fprintf(&b, `<div style="display:grid;grid-template-columns:%s;%sgrid-auto-rows:%dpx;gap:0;font:11px monospace;background:#fff">`,
		colsTemplate, rowsTemplate, g.cell)
	b.WriteByte('\n')
	if g.colLabels != nil {
		if g.rowLabels != nil {
			b.WriteString(`<div></div>`)
		}
		for _, l := range g.colLabels {
			fmt.Fprintf(&b, `<div style="writing-mode:vertical-rl;transform:rotate(180deg);white-space:pre;line-height:%dpx;padding-bottom:2px">%s</div>`,
				g.cell, tok(l))
		}
		b.WriteByte('\n')
	}
	for r := 0; r < g.rows; r++ {
		if g.rowLabels != nil {
			fmt.Fprintf(&b, `<div style="text-align:right;white-space:pre;padding-right:4px;line-height:%dpx">%s</div>`,
				g.cell, tok(g.rowLabels[r]))
		}
		for c := 0; c < g.cols; c++ {
			v := g.data[r*g.cols+c]
			fmt.Fprintf(&b, `<div style="background:%s" title="%s"></div>`, g.scale.color(v).hex(), esc(g.hover(r, c, v)))
		}
		b.WriteByte('\n')
	}
	b.WriteString(`</div></div>`)
	return b.String()
}

// heatmapParts builds a heatmap's HTML and SVG, or an error message as HTML and no SVG.
func heatmapParts(data []float32, rows, cols int, rowLabels, colLabels []string, title string, opts []Option) (string, string) {
	if err := checkMatrix(data, rows, cols); err != nil {
		return errorHTML("heatmap: %v", err), ""
	}
	o := collect(opts)
	rl, cl := labelsOr(rowLabels, rows), labelsOr(colLabels, cols)
	sc := scaleFor(data, o)
	cell := cellSize(rows, cols)
	pic := picture{scale: sc, valueTitle: o.valueTitle, panels: []panel{{
		title: title, data: data, rows: rows, cols: cols, rowLabels: rl, colLabels: cl,
		rowTitle: o.rowTitle, colTitle: o.colTitle, cellW: cell, cellH: cell,
	}}}
	svg := pic.svg()
	interactive := gridHTML(grid{
		data: data, rows: rows, cols: cols, rowLabels: rl, colLabels: cl, title: title,
		cell: cell, scale: sc,
		hover: func(r, c int, v float32) string {
			return fmt.Sprintf("%s, %s: %s", VisibleToken(rl[r]), VisibleToken(cl[c]), num(v))
		},
	})
	alt := fmt.Sprintf("heatmap %s: %d x %d, %s", title, rows, cols, sc.describe())
	return pictureHTML("gns-heatmap", alt, svg, interactive), svg
}

// heatmapHTML draws a rows x cols matrix (row-major data) as an SVG picture (shown through an
// <img>, which survives untrusted notebooks and HTML exports) with titled axes and a colour
// bar, above the same cells as HTML with each value on hover. Colours are diverging
// (blue–white–red around 0) when the values span both signs, else sequential (white–red from
// the minimum to the maximum); opts change the scale (Center, Min, Max, Diverging, Sequential,
// LogShading, RankShading) and titles (Axes, ValueTitle). Labels must have one entry per row
// or column, else indices are used.
func heatmapHTML(data []float32, rows, cols int, rowLabels, colLabels []string, title string, opts ...Option) string {
	h, _ := heatmapParts(data, rows, cols, rowLabels, colLabels, title, opts)
	return h
}

// heatmapSVG is heatmapHTML's picture alone, an SVG document ("" when the input is malformed).
func heatmapSVG(data []float32, rows, cols int, rowLabels, colLabels []string, title string, opts ...Option) string {
	_, s := heatmapParts(data, rows, cols, rowLabels, colLabels, title, opts)
	return s
}

// HeatmapText prints the matrix as a table of numbers with its row and column labels.
func HeatmapText(data []float32, rows, cols int, rowLabels, colLabels []string, title string) string {
	if err := checkMatrix(data, rows, cols); err != nil {
		return errorText("heatmap: %v", err)
	}
	return matrixText(data, rows, cols, labelsOr(rowLabels, rows), labelsOr(colLabels, cols), title)
}

// textEdge is how many rows or columns matrixText keeps at each end of a side longer than
// 2*textEdge, so that wide matrices (hidden states) stay readable as text.
const textEdge = 8

// textIndices lists the indices matrixText prints along a side of length n; -1 marks "...".
func textIndices(n int) []int {
	var idx []int
	for i := 0; i < n; i++ {
		if n > 2*textEdge && i == textEdge {
			idx = append(idx, -1)
			i = n - textEdge
		}
		idx = append(idx, i)
	}
	return idx
}

func matrixText(data []float32, rows, cols int, rowLabels, colLabels []string, title string) string {
	headers := []string{""}
	right := map[int]bool{}
	colIdx := textIndices(cols)
	for i, c := range colIdx {
		right[i+1] = true
		if c < 0 {
			headers = append(headers, "...")
		} else {
			headers = append(headers, VisibleToken(colLabels[c]))
		}
	}
	var table [][]string
	for _, r := range textIndices(rows) {
		if r < 0 {
			table = append(table, []string{"..."})
			continue
		}
		row := []string{VisibleToken(rowLabels[r])}
		for _, c := range colIdx {
			if c < 0 {
				row = append(row, "...")
			} else {
				row = append(row, num(data[r*cols+c]))
			}
		}
		table = append(table, row)
	}
	out := textTable(headers, table, right)
	if title != "" {
		out = title + "\n" + out
	}
	return out
}

// ShowHeatmap displays a matrix as a heatmap in a notebook (HTML, with the SVG picture also as
// image/svg+xml), a table of numbers elsewhere.
func ShowHeatmap(data []float32, rows, cols int, rowLabels, colLabels []string, title string, opts ...Option) {
	h, svg := heatmapParts(data, rows, cols, rowLabels, colLabels, title, opts)
	showPicture(h, svg, HeatmapText(data, rows, cols, rowLabels, colLabels, title))
}
