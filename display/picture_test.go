package display

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"image/png"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"
)

// svgDoc is what the tests read back from a picture: its texts by class and its embedded
// cell images.
type svgDoc struct {
	texts  map[string][]string // class ("" for none) -> texts
	images []string            // data URIs of <image> elements
}

// parseSVG checks that s is well-formed XML with an <svg> root and collects its texts and images.
func parseSVG(t *testing.T, s string) svgDoc {
	t.Helper()
	if s == "" {
		t.Fatal("empty SVG")
	}
	doc := svgDoc{texts: map[string][]string{}}
	dec := xml.NewDecoder(strings.NewReader(s))
	var class string
	var inText, root bool
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, s)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if !root {
				if e.Name.Local != "svg" {
					t.Fatalf("root element %q, want svg", e.Name.Local)
				}
				root = true
			}
			switch e.Name.Local {
			case "text":
				inText, class = true, ""
				for _, a := range e.Attr {
					if a.Name.Local == "class" {
						class = a.Value
					}
				}
				doc.texts[class] = append(doc.texts[class], "")
			case "image":
				for _, a := range e.Attr {
					if a.Name.Local == "href" {
						doc.images = append(doc.images, a.Value)
					}
				}
			}
		case xml.EndElement:
			if e.Name.Local == "text" {
				inText = false
			}
		case xml.CharData:
			if inText {
				l := doc.texts[class]
				l[len(l)-1] += string(e)
			}
		}
	}
	return doc
}

// cellsImage decodes the PNG of a picture's cells.
func cellsImage(t *testing.T, uri string) ([]byte, int, int) {
	t.Helper()
	b64, ok := strings.CutPrefix(uri, "data:image/png;base64,")
	if !ok {
		t.Fatalf("cells image is not a PNG data URI: %.40q", uri)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("cells image: %v", err)
	}
	return raw, img.Bounds().Dx(), img.Bounds().Dy()
}

// imgSVG returns the SVG inside the HTML's <img> data URI.
func imgSVG(t *testing.T, html string) string {
	t.Helper()
	m := regexp.MustCompile(`<img class="gns-picture" alt="[^"]*" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)">`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no <img> with an SVG data URI in:\n%.300s", html)
	}
	raw, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestHeatmapPicture(t *testing.T) {
	data := []float32{-2, 0, 1, 0.5, -1, 2}
	rows, cols := []string{"layer 0", "layer 1"}, []string{" Mary", "<b>", "x"}
	opts := []Option{Axes("patched layer", "patched position"), ValueTitle("logit diff")}
	svg := heatmapSVG(data, 2, 3, rows, cols, "patching", opts...)
	html := heatmapHTML(data, 2, 3, rows, cols, "patching", opts...)
	if got := imgSVG(t, html); got != svg {
		t.Errorf("the <img> does not show heatmapSVG's picture")
	}
	doc := parseSVG(t, svg)
	if !contains(doc.texts["axis-title"], "patched layer") || !contains(doc.texts["axis-title"], "patched position") {
		t.Errorf("axis titles %q", doc.texts["axis-title"])
	}
	if !contains(doc.texts["title"], "patching") || !contains(doc.texts["value-title"], "logit diff") {
		t.Errorf("titles %q, colour bar title %q", doc.texts["title"], doc.texts["value-title"])
	}
	if !contains(doc.texts["row-label"], "layer 1") || !contains(doc.texts["col-label"], "␣Mary") || !contains(doc.texts["col-label"], "<b>") {
		t.Errorf("labels %q %q", doc.texts["row-label"], doc.texts["col-label"])
	}
	ticks := doc.texts["tick"]
	if len(ticks) < 3 || !contains(ticks, "-2") || !contains(ticks, "0") || !contains(ticks, "2") {
		t.Errorf("colour bar ticks %q, want at least -2, 0 and 2", ticks)
	}
	if len(doc.images) != 1 {
		t.Fatalf("%d cell images, want 1", len(doc.images))
	}
	raw, w, h := cellsImage(t, doc.images[0])
	if len(raw) == 0 || w != 3*18 || h != 2*18 {
		t.Errorf("cells image %d bytes, %dx%d; want 54x36", len(raw), w, h)
	}
	// The interactive cells are still there, folded under the picture.
	if !strings.Contains(html, "<details>") || !strings.Contains(html, `class="gns-grid"`) {
		t.Errorf("no folded interactive grid in:\n%.500s", html)
	}
	if heatmapSVG(data, 3, 3, nil, nil, "") != "" {
		t.Errorf("a malformed matrix drew a picture")
	}
}

// pixel returns the colour of cell (r, c) in a picture's cells image.
func pixel(t *testing.T, svg string, r, c, cell int) rgb {
	t.Helper()
	doc := parseSVG(t, svg)
	raw, _, _ := cellsImage(t, doc.images[0])
	img, _ := png.Decode(bytes.NewReader(raw))
	cr, cg, cb, _ := img.At(c*cell+cell/2, r*cell+cell/2).RGBA()
	return rgb{uint8(cr >> 8), uint8(cg >> 8), uint8(cb >> 8)}
}

// TestScaleChoice: diverging around 0 only when values span both signs, else sequential from
// the minimum to the maximum (raw logit differences, all negative, must not be uniform blue);
// options override.
func TestScaleChoice(t *testing.T) {
	neg := []float32{-7.8, -5, -3}
	s := newScale(neg)
	if s.kind != sequentialScale || math.Abs(s.lo+7.8) > 1e-6 || math.Abs(s.hi+3) > 1e-6 {
		t.Errorf("all-negative data: %s, want sequential -7.8..-3", s.describe())
	}
	if s.color(-7.8) != white || s.color(-3) != red {
		t.Errorf("all-negative: min %s, max %s; want white and red", s.color(-7.8).hex(), s.color(-3).hex())
	}
	svg := heatmapSVG(neg, 1, 3, nil, nil, "")
	if a, b := pixel(t, svg, 0, 0, 18), pixel(t, svg, 0, 2, 18); a == b || a.b > a.r || b.b > b.r {
		t.Errorf("all-negative heatmap drew %s and %s: want distinct, not blue", a.hex(), b.hex())
	}

	s = newScale([]float32{-1, 3})
	if s.kind != divergingScale || s.center != 0 || s.lo != -3 || s.hi != 3 {
		t.Errorf("mixed signs: %s, want diverging around 0, -3..3", s.describe())
	}
	if c := s.color(0); c != white {
		t.Errorf("0 drawn %s", c.hex())
	}
	if c := s.color(-1); !(c.b > c.r) {
		t.Errorf("-1 drawn %s, want blue", c.hex())
	}
	if s := newScale([]float32{1, 2, 4}); s.kind != sequentialScale || s.color(1) != white || s.color(4) != red {
		t.Errorf("all-positive: %s", s.describe())
	}

	// Options.
	s = newScale(neg, Center(-5))
	if s.kind != divergingScale || s.color(-5) != white || !(s.color(-7.8).b > s.color(-7.8).r) || s.color(-3).r <= s.color(-3).b {
		t.Errorf("Center(-5): %s", s.describe())
	}
	s = newScale(neg, Diverging())
	if s.kind != divergingScale || math.Abs(s.lo+7.8) > 1e-6 || math.Abs(s.hi-7.8) > 1e-6 {
		t.Errorf("Diverging(): %s, want -7.8..7.8 around 0", s.describe())
	}
	s = newScale([]float32{-1, 3}, Sequential())
	if s.kind != sequentialScale || s.color(-1) != white || s.color(3) != red {
		t.Errorf("Sequential(): %s", s.describe())
	}
	s = newScale([]float32{0.2, 0.4}, Min(0), Max(1))
	if s.lo != 0 || s.hi != 1 || s.color(1) != red || s.color(0) != white || s.color(0.4) == red {
		t.Errorf("Min(0), Max(1): %s", s.describe())
	}
	if s.color(2) != red || s.color(-1) != white {
		t.Errorf("values outside Min..Max are not clamped")
	}

	// Log shading spreads probabilities over orders of magnitude evenly.
	probs := []float32{0.0001, 0.001, 0.01, 0.1, 1}
	s = newScale(probs, LogShading())
	for i, v := range probs {
		if p := s.pos(float64(v)); math.Abs(p-float64(i)/4) > 1e-6 {
			t.Errorf("log position of %v = %v, want %v", v, p, float64(i)/4)
		}
	}
	if ticks := s.ticks(); len(ticks) != 5 || ticks[0].label != "0.0001" || ticks[4].label != "1" {
		t.Errorf("log ticks %v", ticks)
	}
	if ticks := newScale([]float32{2, 8}, LogShading()).ticks(); len(ticks) != 3 || ticks[1].label != "4" || math.Abs(ticks[1].pos-0.5) > 1e-6 {
		t.Errorf("log ticks within a decade %v, want 2, 4 (the middle), 8", ticks)
	}
	// Rank shading: one outlier does not wash out the rest.
	s = newScale([]float32{1, 2, 3, 1000}, RankShading())
	if p := s.pos(2); math.Abs(p-1.0/3) > 1e-9 {
		t.Errorf("rank position of 2 = %v, want 1/3", p)
	}
	if lin := newScale([]float32{1, 2, 3, 1000}); lin.pos(3) > 0.01 {
		t.Errorf("linear position of 3 among 1..1000 = %v", lin.pos(3))
	}
	if ticks := newScale([]float32{1, 2, 3, 1000}, RankShading()).ticks(); ticks[0].label != "1" || ticks[len(ticks)-1].label != "1000" {
		t.Errorf("rank ticks %v", ticks)
	}
}

func TestAttentionPicture(t *testing.T) {
	w := []float32{
		1, 0, 0,
		0.5, 0.5, 0,
		0.2, 0.3, 0.5,

		1, 0, 0,
		0.9, 0.1, 0,
		0.7, 0.2, 0.1,
	}
	tokens := []string{"<|endoftext|>", " Paris", "\n"}
	doc := parseSVG(t, attentionSVG(w, 2, 3, tokens, 1, Layer(3)))
	if !contains(doc.texts["title"], "layer 3, head 1") {
		t.Errorf("title %q, want the layer and head", doc.texts["title"])
	}
	if !contains(doc.texts["axis-title"], "query") || !contains(doc.texts["axis-title"], "key") {
		t.Errorf("axis titles %q", doc.texts["axis-title"])
	}
	if !contains(doc.texts["value-title"], "attention weight") || !contains(doc.texts["tick"], "0") || !contains(doc.texts["tick"], "1") {
		t.Errorf("colour bar %q ticks %q", doc.texts["value-title"], doc.texts["tick"])
	}
	if !contains(doc.texts["row-label"], "␣Paris") || !contains(doc.texts["col-label"], "⏎") {
		t.Errorf("token labels %q %q", doc.texts["row-label"], doc.texts["col-label"])
	}
	html := attentionHTML(w, 2, 3, tokens, 1, Layer(3))
	if imgSVG(t, html) != attentionSVG(w, 2, 3, tokens, 1, Layer(3)) {
		t.Errorf("attentionHTML's <img> is not attentionSVG")
	}
	// Every head, on one 0..1 scale.
	doc = parseSVG(t, attentionGridSVG(w, 2, 3, tokens, Layer(0)))
	if !contains(doc.texts["title"], "layer 0, head 0") || !contains(doc.texts["title"], "layer 0, head 1") || len(doc.images) != 2 {
		t.Errorf("grid titles %q, %d cell images", doc.texts["title"], len(doc.images))
	}
	if attentionSVG(w, 2, 3, tokens, 2) != "" || !strings.Contains(attentionHTML(w, 2, 3, tokens, -1), "no head -1") {
		t.Errorf("a missing head drew a picture")
	}
}

func TestLogitLensPicture(t *testing.T) {
	layers := []string{"h.0", "ln_f"}
	tokens := []string{"The", " Eiffel"}
	top := [][]string{{" first", " Tower"}, {"<|endoftext|>", " Tower"}}
	probs := [][]float32{{0.001, 0.2}, {0.1}} // one missing
	doc := parseSVG(t, logitLensSVG(layers, tokens, top, probs, LogShading()))
	for _, want := range []string{"␣first", "<|endoftext…", "␣Tower"} {
		if !contains(doc.texts[""], want) {
			t.Errorf("cell texts %q lack %q", doc.texts[""], want)
		}
	}
	if !contains(doc.texts["axis-title"], "layer") || !contains(doc.texts["axis-title"], "input position") ||
		!contains(doc.texts["tick"], "0.001") || !contains(doc.texts["tick"], "0.2") {
		t.Errorf("axis titles %q, ticks %q", doc.texts["axis-title"], doc.texts["tick"])
	}
	if len(doc.texts[""]) != 3 {
		t.Errorf("the missing cell has text: %q", doc.texts[""])
	}
}
