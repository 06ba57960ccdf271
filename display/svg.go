package display

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
)

// Pictures: every heatmap-like display also carries a static SVG image, shown through an <img>
// in its HTML and as an image/svg+xml output. Jupyter's sanitizer (untrusted notebooks,
// JupyterLab, the classic notebook) strips inline styles and <svg> elements from HTML but keeps
// <img> with a data: URI, so the picture survives where the styled HTML collapses.
//
// The SVG is written by hand rather than with gonum.org/v1/plot: linking gonum/plot into a
// cell made every GoNB cell ~0.25 s slower (1.12 s -> 1.35 s median, +6.6 MB binary, measured
// 2026-12-01), and its only fonts (Liberation) lack the glyphs ␣ ⏎ ⇥ that token labels use.
// Text here stays text, drawn by the viewer's fonts. The coloured cells are one PNG (standard
// library) embedded in the SVG at one image pixel per screen pixel, so a 64x64 pattern costs
// kilobytes, not a rect per cell.

// panel is one coloured matrix of a picture.
type panel struct {
	title              string
	data               []float32
	rows, cols         int
	rowLabels          []string // nil: none
	colLabels          []string // nil: none
	rowTitle, colTitle string
	cellW, cellH       int
	// cellText, when set, writes text in each cell (the logit lens' top tokens).
	cellText func(r, c int) string
	// missing marks cells with no value (drawn white, no text).
	missing func(r, c int) bool
}

// picture is a set of panels on one colour scale, laid out in rows, with a colour bar.
type picture struct {
	panels     []panel
	scale      scale
	valueTitle string
	perRow     int // panels per row; 0: all in one row
}

const (
	fontSize  = 11
	charW     = 6.7 // width of a monospace character at fontSize
	titleSize = 12
	pad       = 6
)

func textWidth(s string) float64 { return float64(width(s)) * charW }

func maxTextWidth(labels []string) float64 {
	w := 0.0
	for _, l := range labels {
		w = math.Max(w, textWidth(VisibleToken(l)))
	}
	return w
}

// labelStep thins labels out when cells are smaller than a line of text.
func labelStep(cell int) int {
	if cell >= fontSize {
		return 1
	}
	return int(math.Ceil(float64(fontSize) / float64(cell)))
}

// layout is the geometry of one panel.
type layout struct {
	w, h               float64
	gridX, gridY       float64
	gridW, gridH       float64
	rowTitleW, rowLabW float64
	titleH, colLabH    float64
	colTitleH          float64
	rowStep, colStep   int
	rowTitleY          float64 // the row title's centre
}

func (p panel) layout() layout {
	l := layout{gridW: float64(p.cols * p.cellW), gridH: float64(p.rows * p.cellH)}
	l.rowStep, l.colStep = labelStep(p.cellH), labelStep(p.cellW)
	if p.title != "" {
		l.titleH = titleSize + 8
	}
	if p.rowTitle != "" {
		l.rowTitleW = fontSize + 8
	}
	if p.rowLabels != nil {
		l.rowLabW = maxTextWidth(p.rowLabels) + 4
	}
	if p.colLabels != nil {
		l.colLabH = maxTextWidth(p.colLabels) + 4
	}
	if p.colTitle != "" {
		l.colTitleH = fontSize + 8
	}
	l.gridX = pad + l.rowTitleW + l.rowLabW
	l.gridY = pad + l.titleH
	l.w = l.gridX + l.gridW + pad
	l.h = l.gridY + l.gridH + l.colLabH + l.colTitleH + pad
	// The row title runs down beside the grid, below the panel's title, however short the grid.
	l.rowTitleY = l.gridY + math.Max(l.gridH, textWidth(p.rowTitle))/2
	l.h = math.Max(l.h, l.rowTitleY+textWidth(p.rowTitle)/2+pad)
	// A long title or axis title widens the panel.
	l.w = math.Max(l.w, pad+textWidth(p.title)*titleSize/fontSize+pad)
	l.w = math.Max(l.w, l.gridX+textWidth(p.colTitle)+pad)
	return l
}

// cellsPNG draws the panel's cells as a PNG, cellW x cellH pixels each.
func (p panel) cellsPNG(s scale) string {
	img := image.NewRGBA(image.Rect(0, 0, p.cols*p.cellW, p.rows*p.cellH))
	for r := 0; r < p.rows; r++ {
		for c := 0; c < p.cols; c++ {
			col := white
			if p.missing == nil || !p.missing(r, c) {
				col = s.color(p.data[r*p.cols+c])
			}
			rc := color.RGBA{col.r, col.g, col.b, 255}
			for y := r * p.cellH; y < (r+1)*p.cellH; y++ {
				for x := c * p.cellW; x < (c+1)*p.cellW; x++ {
					img.SetRGBA(x, y, rc)
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	_ = enc.Encode(&buf, img)
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// f formats a coordinate.
func f(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
}

// svg draws the picture.
func (pic picture) svg() string {
	if len(pic.panels) == 0 {
		return ""
	}
	per := pic.perRow
	if per <= 0 || per > len(pic.panels) {
		per = len(pic.panels)
	}
	// Every panel gets the largest panel's box.
	var boxW, boxH, gridH float64
	lays := make([]layout, len(pic.panels))
	for i, p := range pic.panels {
		lays[i] = p.layout()
		boxW, boxH = math.Max(boxW, lays[i].w), math.Max(boxH, lays[i].h)
		gridH = math.Max(gridH, lays[i].gridH)
	}
	nRows := (len(pic.panels) + per - 1) / per
	panelsW, panelsH := boxW*float64(per), boxH*float64(nRows)

	// The colour bar, right of the panels, as tall as a grid (at least 120 px).
	ticks := pic.scale.ticks()
	tickW := 0.0
	for _, t := range ticks {
		tickW = math.Max(tickW, textWidth(t.label))
	}
	barX, barY, barW := panelsW+12, lays[0].gridY, 14.0
	barH := math.Max(120, math.Min(gridH, 360))
	totalW := barX + barW + 4 + tickW + pad
	if pic.valueTitle != "" {
		totalW += fontSize + 10
	}
	totalH := math.Max(panelsH, barY+barH+pad+fontSize)

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" xml:space="preserve" width="%s" height="%s" viewBox="0 0 %s %s" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="%d">`,
		f(totalW), f(totalH), f(totalW), f(totalH), fontSize)
	b.WriteString("\n")
	fmt.Fprintf(&b, `<rect width="%s" height="%s" fill="#ffffff"/>`+"\n", f(totalW), f(totalH))
	for i, p := range pic.panels {
		ox, oy := boxW*float64(i%per), boxH*float64(i/per)
		p.draw(&b, lays[i], ox, oy, pic.scale)
	}

	// Colour bar: 64 strips from the low end (bottom) to the high end (top), then ticks.
	const strips = 64
	fmt.Fprintf(&b, `<g class="colorbar">`)
	for i := 0; i < strips; i++ {
		t := (float64(i) + 0.5) / strips
		y := barY + barH*(1-float64(i+1)/strips)
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`,
			f(barX), f(y), f(barW), f(barH/strips+0.5), pic.scale.colorAt(t).hex())
	}
	fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#888"/>`, f(barX), f(barY), f(barW), f(barH))
	for _, t := range ticks {
		y := barY + barH*(1-t.pos)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#000"/>`, f(barX+barW), f(y), f(barX+barW+3), f(y))
		fmt.Fprintf(&b, `<text class="tick" x="%s" y="%s" dominant-baseline="middle">%s</text>`, f(barX+barW+5), f(y), esc(t.label))
	}
	if pic.valueTitle != "" {
		x, y := totalW-pad-2, barY+barH/2
		fmt.Fprintf(&b, `<text class="value-title" x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>`,
			f(x), f(y), f(x), f(y), esc(pic.valueTitle))
	}
	b.WriteString("</g>\n</svg>")
	return b.String()
}

func (p panel) draw(b *strings.Builder, l layout, ox, oy float64, s scale) {
	b.WriteString("<g>")
	if p.title != "" {
		fmt.Fprintf(b, `<text class="title" x="%s" y="%s" font-size="%d" font-weight="bold">%s</text>`,
			f(ox+pad), f(oy+pad+titleSize), titleSize, esc(p.title))
	}
	gx, gy := ox+l.gridX, oy+l.gridY
	if p.rows > 0 && p.cols > 0 {
		fmt.Fprintf(b, `<image x="%s" y="%s" width="%s" height="%s" style="image-rendering:pixelated" xlink:href="data:image/png;base64,%s"/>`,
			f(gx), f(gy), f(l.gridW), f(l.gridH), p.cellsPNG(s))
	}
	if p.cellText != nil {
		for r := 0; r < p.rows; r++ {
			for c := 0; c < p.cols; c++ {
				txt := VisibleToken(p.cellText(r, c))
				if txt == "" || (p.missing != nil && p.missing(r, c)) {
					continue
				}
				fill := "#000"
				if s.color(p.data[r*p.cols+c]).dark() {
					fill = "#fff"
				}
				fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle" dominant-baseline="middle" fill="%s">%s</text>`,
					f(gx+(float64(c)+0.5)*float64(p.cellW)), f(gy+(float64(r)+0.5)*float64(p.cellH)), fill, esc(txt))
			}
		}
	}
	fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#888"/>`, f(gx), f(gy), f(l.gridW), f(l.gridH))
	for r := 0; r < p.rows && p.rowLabels != nil; r += l.rowStep {
		fmt.Fprintf(b, `<text class="row-label" x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`,
			f(gx-3), f(gy+(float64(r)+0.5)*float64(p.cellH)), esc(VisibleToken(p.rowLabels[r])))
	}
	for c := 0; c < p.cols && p.colLabels != nil; c += l.colStep {
		x, y := gx+(float64(c)+0.5)*float64(p.cellW), gy+l.gridH+3
		fmt.Fprintf(b, `<text class="col-label" x="%s" y="%s" text-anchor="end" dominant-baseline="middle" transform="rotate(-90 %s %s)">%s</text>`,
			f(x), f(y), f(x), f(y), esc(VisibleToken(p.colLabels[c])))
	}
	if p.rowTitle != "" {
		x, y := ox+pad+fontSize/2+2, oy+l.rowTitleY
		fmt.Fprintf(b, `<text class="axis-title" x="%s" y="%s" text-anchor="middle" dominant-baseline="middle" transform="rotate(-90 %s %s)">%s</text>`,
			f(x), f(y), f(x), f(y), esc(p.rowTitle))
	}
	if p.colTitle != "" {
		fmt.Fprintf(b, `<text class="axis-title" x="%s" y="%s" text-anchor="middle">%s</text>`,
			f(gx+l.gridW/2), f(gy+l.gridH+l.colLabH+fontSize+2), esc(p.colTitle))
	}
	b.WriteString("</g>\n")
}

// pictureHTML shows svg through an <img> (which sanitizers keep) above the interactive HTML,
// folded in a <details> so that it neither duplicates the picture nor collapses into a list
// where styles are stripped.
func pictureHTML(class, alt, svg, interactive string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="%s" style="display:inline-block;margin:4px 8px 4px 0;vertical-align:top;color:#000">`, class)
	fmt.Fprintf(&b, `<img class="gns-picture" alt="%s" src="data:image/svg+xml;base64,%s">`,
		esc(alt), base64.StdEncoding.EncodeToString([]byte(svg)))
	if interactive != "" {
		b.WriteString(`<details><summary style="font:11px sans-serif;cursor:pointer">values on hover</summary>` + "\n")
		b.WriteString(interactive)
		b.WriteString("</details>")
	}
	b.WriteString("</div>")
	return b.String()
}
