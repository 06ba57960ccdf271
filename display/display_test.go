package display

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/edit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// dataURI matches the base64 payload of data: URIs, which goldens leave out (the pictures
// have goldens of their own).
var dataURI = regexp.MustCompile(`;base64,[A-Za-z0-9+/=]+`)

// golden compares got with testdata/name.golden (rewriting it with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	if !strings.HasSuffix(name, "_svg") {
		got = dataURI.ReplaceAllString(got, ";base64,...")
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

// tinyGraph is the captured graph of a small WrappedLayer-like module.
func tinyGraph() *edit.Graph {
	return &edit.Graph{Module: "layer1", Type: "WrappedLayer", Nodes: []*edit.GNode{
		{Op: edit.Placeholder, Name: "x", Target: "x", Shape: "[2 3]", DType: "float32"},
		{Op: edit.GetAttr, Name: "weight", Target: "weight", Shape: "[3 1]", DType: "float32"},
		{Op: edit.GetAttr, Name: "bias", Target: "bias", Shape: "[1]", DType: "float32"},
		{Op: edit.CallFunction, Name: "dot_general", Target: "DotGeneral", Args: []string{"x", "weight"},
			Kwargs: "contracting=[1]", Shape: "[2 1]", DType: "float32"},
		{Op: edit.CallFunction, Name: "add", Target: "Add", Args: []string{"dot_general", "bias"}, Shape: "[2 1]", DType: "float32"},
		{Op: edit.CallModule, Name: "act", Target: "act", Args: []string{"add"}, Shape: "[2 1]", DType: "float32"},
		{Op: edit.CallFunction, Name: "reduce_sum", Target: "ReduceSum", Args: []string{"act"},
			Kwargs: "axes=[1]", Shape: "[2]", DType: "float32"},
		{Op: edit.Output, Name: "output", Target: "output", Args: []string{"reduce_sum"}},
	}}
}

func TestGraphGolden(t *testing.T) {
	gr := tinyGraph()
	golden(t, "graph_html", GraphHTML(gr))
}

func TestGraphHTMLRows(t *testing.T) {
	gr := tinyGraph()
	h := GraphHTML(gr)
	rows := regexp.MustCompile(`<tr class="gns-op-([a-z_]+)" style="background:(#[0-9a-f]{6})">`).FindAllStringSubmatch(h, -1)
	if len(rows) != len(gr.Nodes) {
		t.Fatalf("%d node rows, want %d", len(rows), len(gr.Nodes))
	}
	colorOf := map[string]string{}
	for i, r := range rows {
		if r[1] != gr.Nodes[i].Op {
			t.Errorf("row %d has class gns-op-%s, want gns-op-%s", i, r[1], gr.Nodes[i].Op)
		}
		if c, ok := colorOf[r[1]]; ok && c != r[2] {
			t.Errorf("opcode %s drawn in both %s and %s", r[1], c, r[2])
		}
		colorOf[r[1]] = r[2]
	}
	seen := map[string]string{}
	for op, c := range colorOf {
		if other, dup := seen[c]; dup {
			t.Errorf("opcodes %s and %s share colour %s", op, other, c)
		}
		seen[c] = op
	}
	if len(colorOf) != 5 {
		t.Errorf("%d opcodes coloured, want all 5: %v", len(colorOf), colorOf)
	}
	// The HTML cells are the text table's cells: one form of each row.
	for i, r := range gr.TableCells()[1:] {
		if !strings.Contains(h, ">"+esc(r[3])+"<") {
			t.Errorf("row %d: args %q of the text table are not in the HTML", i, r[3])
		}
	}
}

func TestGraphNil(t *testing.T) {
	if s := GraphHTML(nil); !strings.Contains(s, "nil graph") {
		t.Errorf("nil graph rendered as %q", s)
	}
	gr := &edit.Graph{Nodes: []*edit.GNode{nil, {Op: edit.Output, Name: "output", Target: "output"}}}
	if got := GraphHTML(gr); !strings.Contains(got, `<tr class="gns-op-output"`) {
		t.Errorf("GraphHTML with a nil node = %q", got)
	}
}

func TestTensorGolden(t *testing.T) {
	seq := func(n int, f func(i int) float32) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	cases := []struct {
		name string
		data []float32
		dims []int
	}{
		{"tensor_2x2", []float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2}},
		{"tensor_mixed", []float32{1, -2.5, 0, 10.25}, []int{4}},
		{"tensor_scalar", []float32{3.5}, nil},
		{"tensor_summary", seq(80, func(i int) float32 { return float32(i) }), []int{8, 10}},
		{"tensor_3d", seq(2*8*2, func(i int) float32 { return float32(i) / 4 }), []int{2, 8, 2}},
		{"tensor_sci", []float32{1e-5, 0.5, 2, float32(math.NaN()), float32(math.Inf(-1))}, []int{5}},
		{"tensor_sci_sign", []float32{1.5e-5, 1, -3}, []int{3}},
		{"tensor_thirds", []float32{0.1, 1.0 / 3, 2}, []int{3}},
		{"tensor_nan", []float32{-0.5, float32(math.NaN()), 123.456}, []int{3}},
	}
	var all []string
	for _, c := range cases {
		all = append(all, "# "+c.name+"\n"+tensorText(c.data, c.dims))
	}
	golden(t, "tensor_text", strings.Join(all, "\n\n"))
}

func TestTensorTextExact(t *testing.T) {
	want := "[[0.1 0.2]\n [0.3 0.4]]\nshape=[2 2] dtype=float32"
	if got := tensorText([]float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2}); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := tensorText([]float32{1, 2, 3}, []int{2, 2}); !strings.HasPrefix(got, "display: ") {
		t.Errorf("mismatched shape printed %q", got)
	}
	if got := tensorText(nil, []int{0, 3}); got != "[]\nshape=[0 3] dtype=float32" {
		t.Errorf("empty tensor printed %q", got)
	}
}

func TestHeatmapGolden(t *testing.T) {
	data := []float32{-2, 0, 1, 0.5, -1, 2}
	golden(t, "heatmap_html", heatmapHTML(data, 2, 3, []string{"a", "b"}, []string{" x", "y", "<z>"}, "demo"))
	golden(t, "heatmap_text", HeatmapText(data, 2, 3, []string{"a", "b"}, []string{" x", "y", "<z>"}, "demo"))
	golden(t, "heatmap_svg", heatmapSVG(data, 2, 3, []string{"a", "b"}, []string{" x", "y", "<z>"}, "demo", Axes("rows", "columns"), ValueTitle("value")))
}

func parseHex(t *testing.T, s string) (r, g, b int) {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
	if err != nil {
		t.Fatalf("bad colour %q", s)
	}
	return int(v >> 16), int(v >> 8 & 0xff), int(v & 0xff)
}

func TestColorScaleEndpoints(t *testing.T) {
	data := []float32{-3, -1, 0, 0.5, 2}
	h := heatmapHTML(data, 1, 5, nil, nil, "")
	cells := regexp.MustCompile(`<div style="background:(#[0-9a-f]{6})" title="0, (\d): ([^"]*)"></div>`).FindAllStringSubmatch(h, -1)
	if len(cells) != len(data) {
		t.Fatalf("%d cells, want %d", len(cells), len(data))
	}
	// Most negative: full blue; 0: white; most positive: red-ish, weaker than the blue since
	// the scale is symmetric around 0 with |-3| as its end.
	r, g, b := parseHex(t, cells[0][1])
	if !(b > r+100 && b > g) {
		t.Errorf("most negative value drawn %s, want blue", cells[0][1])
	}
	if cells[2][1] != "#ffffff" {
		t.Errorf("0 drawn %s, want white", cells[2][1])
	}
	r, g, b = parseHex(t, cells[4][1])
	if !(r > b+50 && r > g+50) {
		t.Errorf("most positive value drawn %s, want red", cells[4][1])
	}
	if cells[0][3] != "-3" || cells[4][3] != "2" {
		t.Errorf("hover values %q, %q", cells[0][3], cells[4][3])
	}

	s := newScale([]float32{-1, 1})
	if got := s.color(-1).hex(); got != blue.hex() {
		t.Errorf("color(-1) = %s, want %s", got, blue.hex())
	}
	if got := s.color(1).hex(); got != red.hex() {
		t.Errorf("color(1) = %s, want %s", got, red.hex())
	}
	if got := s.color(0).hex(); got != "#ffffff" {
		t.Errorf("color(0) = %s, want white", got)
	}
	// Sequential when nothing is negative: 0 white, the maximum full red.
	s = newScale([]float32{0, 4, 2})
	if s.kind != sequentialScale || s.color(0).hex() != "#ffffff" || s.color(4).hex() != red.hex() {
		t.Errorf("sequential scale: kind=%v color(0)=%s color(4)=%s", s.kind, s.color(0).hex(), s.color(4).hex())
	}
	if got := s.color(float32(math.NaN())).hex(); got != nanGrey.hex() {
		t.Errorf("NaN drawn %s", got)
	}
	if got := newScale(nil).color(0).hex(); got != "#ffffff" {
		t.Errorf("empty scale drew 0 as %s", got)
	}
}

func TestAttentionGolden(t *testing.T) {
	// 2 heads, 3 tokens, causal.
	w := []float32{
		1, 0, 0,
		0.5, 0.5, 0,
		0.2, 0.3, 0.5,

		1, 0, 0,
		0.9, 0.1, 0,
		0.7, 0.2, 0.1,
	}
	tokens := []string{"<|endoftext|>", " Paris", "\n"}
	golden(t, "attention_html", attentionHTML(w, 2, 3, tokens, 1))
	golden(t, "attention_grid_html", attentionGridHTML(w, 2, 3, tokens))
	golden(t, "attention_text", attentionGridText(w, 2, 3, tokens))
	golden(t, "attention_svg", attentionSVG(w, 2, 3, tokens, 1, Layer(2)))
	golden(t, "attention_grid_svg", attentionGridSVG(w, 2, 3, tokens))
	if got := attentionHTML(w, 2, 3, tokens, 2); !strings.Contains(got, "no head 2") {
		t.Errorf("bad head index rendered %q", got)
	}
	if got := attentionGridText(w[:5], 2, 3, tokens); !strings.HasPrefix(got, "display: ") {
		t.Errorf("short weights rendered %q", got)
	}
	grid := attentionGridHTML(w, 2, 3, tokens)
	for h := 0; h < 2; h++ {
		if !strings.Contains(grid, ">head "+strconv.Itoa(h)+"</div>") {
			t.Errorf("grid lacks the title of head %d", h)
		}
	}
}

func TestTreeGolden(t *testing.T) {
	tree := "GPT2LMHeadModel(\n" +
		"  (transformer): GPT2Model(\n" +
		"    (wte): Embedding(50257, 768)\n" +
		"    (h): ModuleList(\n" +
		"      (0-11): 12 x GPT2Block(\n" +
		"        (attn): GPT2Attention(\n" +
		"          (query_wrapper): [edit] Identity()\n" +
		"        )\n" +
		"      )\n" +
		"    )\n" +
		"  )\n" +
		"  (lm_head): Linear(in=768, out=50257 <tied>)\n" +
		")"
	golden(t, "tree_html", treeHTML(tree))
}

func TestTopK(t *testing.T) {
	logits := []float32{1, 3, 2, 3, -1}
	got := TopK(logits, 3)
	// Hand-computed softmax: e^(x-3) = e^-2, 1, e^-1, 1, e^-4.
	z := math.Exp(-2) + 1 + math.Exp(-1) + 1 + math.Exp(-4)
	want := []Candidate{
		{ID: 1, Logit: 3, Prob: float32(1 / z)},
		{ID: 3, Logit: 3, Prob: float32(1 / z)},
		{ID: 2, Logit: 2, Prob: float32(math.Exp(-1) / z)},
	}
	if len(got) != len(want) {
		t.Fatalf("TopK returned %d candidates, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Logit != want[i].Logit || math.Abs(float64(got[i].Prob-want[i].Prob)) > 1e-6 {
			t.Errorf("candidate %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if math.Abs(float64(want[0].Prob)-0.3966) > 1e-4 {
		t.Errorf("hand-computed probability %v is off", want[0].Prob)
	}
	if n := len(TopK(logits, 10)); n != len(logits) {
		t.Errorf("TopK(k > n) returned %d", n)
	}
	if TopK(logits, 0) != nil || TopK(nil, 3) != nil {
		t.Errorf("TopK of nothing should be nil")
	}
	nan := TopK([]float32{float32(math.NaN()), 0, 0}, 3)
	if nan[0].ID != 1 || nan[2].ID != 0 || nan[2].Prob != 0 || math.Abs(float64(nan[0].Prob)-0.5) > 1e-6 {
		t.Errorf("NaN logit handled as %+v", nan)
	}
}

func TestTopKGolden(t *testing.T) {
	cands := TopK([]float32{1, 3, 2, 3, -1}, 3)
	vocab := []string{"a", " Paris", "<|endoftext|>", "&", "\n"}
	ts := func(id int) string { return vocab[id] }
	golden(t, "topk_text", topKText(cands, ts))
	golden(t, "topk_html", topKHTML(cands, ts))
	if got := topKText(cands, nil); !strings.Contains(got, "#1") {
		t.Errorf("nil tokenString should print ids:\n%s", got)
	}
}

func TestLogitLensGolden(t *testing.T) {
	layers := []string{"h.0", "h.1", "ln_f"}
	tokens := []string{"The", " Eiffel", " Tower"}
	top := [][]string{{" first", " Tower", "\n"}, {" same", " Tower", " is"}, {"<|endoftext|>", " Tower", " is"}}
	probs := [][]float32{{0.05, 0.2, 0.1}, {0.1, 0.6, 0.3}, {0.2, 0.95}} // one missing prob
	golden(t, "logitlens_html", logitLensHTML(layers, tokens, top, probs))
	golden(t, "logitlens_text", LogitLensText(layers, tokens, top, probs))
	golden(t, "logitlens_svg", logitLensSVG(layers, tokens, top, probs))
}

func TestDiffGolden(t *testing.T) {
	a := []float32{1, 2, 3, 4, 5}
	b := []float32{1, 2.5, 1, 4, 5.25}
	names := []string{"a", " Paris", "<b>", "&", "\n"}
	golden(t, "diff_text", diffText("clean", "patched", a, b, names, 3))
	golden(t, "diff_html", diffHTML("clean", "patched", a, b, names, 3))
	got := diffText("A", "B", []float32{1, 2, 3}, []float32{1, 2}, nil, 5)
	for _, want := range []string{"lengths differ", "max |B-A| = 0 at #0", "mean |B-A| = 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("diffText lacks %q:\n%s", want, got)
		}
	}
}

func TestVisibleToken(t *testing.T) {
	for in, want := range map[string]string{
		" Paris":        "␣Paris",
		"\n":            "⏎",
		"  ":            "␣␣",
		"a b":           "a b",
		"x \n":          "x ⏎",
		"tab\t":         "tab⇥",
		"end ":          "end␣",
		"<|endoftext|>": "<|endoftext|>",
		"":              "",
	} {
		if got := VisibleToken(in); got != want {
			t.Errorf("VisibleToken(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEscaping feeds markup-like text to every HTML renderer and checks that none of it
// reaches the output unescaped.
func TestEscaping(t *testing.T) {
	bad := []string{"<|endoftext|>", "<script>x</script>", "a&b", `"q"`}
	gr := &edit.Graph{Module: "<m>", Type: "T&", Nodes: []*edit.GNode{
		{Op: edit.Placeholder, Name: "<script>x</script>", Target: "a&b", Shape: "[1]", DType: `"q"`},
		{Op: edit.Output, Name: "output", Target: "output", Args: []string{"<|endoftext|>"}},
	}}
	outs := map[string]string{
		"GraphHTML":     GraphHTML(gr),
		"heatmapHTML":   heatmapHTML([]float32{1, 2}, 1, 2, []string{"a&b"}, bad[:2], `"q"`),
		"attentionHTML": attentionHTML([]float32{1, 0, 0.5, 0.5}, 1, 2, bad[:2], 0),
		"AttentionGrid": attentionGridHTML([]float32{1, 0, 0.5, 0.5}, 1, 2, []string{"a&b", `"q"`}),
		"treeHTML":      treeHTML("M(\n  (<script>x</script>): T&(a&b, \"q\", <|endoftext|>)\n)"),
		"topKHTML":      topKHTML(TopK([]float32{1, 2, 3, 4}, 4), func(i int) string { return bad[i] }),
		"logitLensHTML": logitLensHTML([]string{"a&b"}, bad[:2], [][]string{bad[2:]}, nil),
		"diffHTML":      diffHTML("<script>x</script>", "a&b", []float32{1, 2, 3, 4}, []float32{0, 0, 0, 0}, bad, 4),
		"tensorHTML":    tensorHTML([]float32{1}, []int{1}),
		"errorHTML":     heatmapHTML([]float32{1}, 2, 2, nil, nil, "<script>x</script>"),
	}
	for name, h := range outs {
		for _, b := range bad {
			if strings.Contains(h, b) {
				t.Errorf("%s contains unescaped %q:\n%s", name, b, h)
			}
		}
		if strings.Contains(h, "<script") {
			t.Errorf("%s contains a <script tag", name)
		}
	}
	if !strings.Contains(outs["attentionHTML"], "&lt;|endoftext|&gt;") {
		t.Errorf("token <|endoftext|> not shown escaped")
	}
	if !strings.Contains(outs["treeHTML"], "&lt;script&gt;x&lt;/script&gt;") {
		t.Errorf("tree name not shown escaped:\n%s", outs["treeHTML"])
	}
}

// TestBadInputsDoNotPanic throws malformed shapes at every renderer.
func TestBadInputsDoNotPanic(t *testing.T) {
	_ = tensorText([]float32{1}, []int{-1, -1})
	_ = tensorText(nil, nil)
	_ = heatmapHTML(nil, -1, 0, nil, nil, "")
	_ = heatmapHTML([]float32{1, 2}, 1, 2, []string{"only"}, []string{"one"}, "")
	_ = HeatmapText([]float32{1}, 3, 3, nil, nil, "")
	_ = attentionHTML(nil, 0, 0, nil, 0)
	_ = attentionGridHTML([]float32{1}, 1, 1, nil)
	_ = attentionText([]float32{1}, 1, 1, nil, -1)
	_ = LogitLensText([]string{"l0", "l1"}, []string{"a", "b"}, nil, [][]float32{{0.5}})
	_ = logitLensHTML([]string{"l0"}, []string{"a", "b"}, [][]string{{"x", "y", "z"}}, nil)
	_ = diffHTML("a", "b", nil, nil, nil, 3)
	_ = diffText("a", "b", []float32{float32(math.NaN())}, []float32{1}, nil, -1)
	_ = topKText(nil, nil)
	_ = treeHTML("")
	_ = GraphHTML(&edit.Graph{})
}

func TestHeatmapTextSummarizes(t *testing.T) {
	data := make([]float32, 2*40)
	got := HeatmapText(data, 2, 40, nil, nil, "")
	header := strings.Fields(strings.SplitN(got, "\n", 2)[0])
	if len(header) != 2*textEdge+1 || header[textEdge] != "..." || header[len(header)-1] != "39" {
		t.Errorf("wide matrix header %v", header)
	}
}

// TestShowOutsideNotebook checks that Show* prints the text form to stdout.
func TestShowOutsideNotebook(t *testing.T) {
	var buf bytes.Buffer
	old := stdout
	stdout = &buf
	defer func() { stdout = old }()
	ShowGraph(tinyGraph())
	ShowTensor([]float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2})
	ShowHeatmap([]float32{1, 2}, 1, 2, nil, nil, "h")
	ShowAttention([]float32{1}, 1, 1, []string{"a"})
	ShowAttentionHead([]float32{1}, 1, 1, []string{"a"}, 0)
	ShowTree("M()")
	ShowTopK(TopK([]float32{0, 1}, 1), nil)
	ShowLogitLens([]string{"l"}, []string{"t"}, [][]string{{"u"}}, [][]float32{{1}})
	ShowDiff("a", "b", []float32{1}, []float32{2}, nil, 1)
	got := buf.String()
	want := tinyGraph().Table() + tensorText([]float32{0.1, 0.2, 0.3, 0.4}, []int{2, 2}) + "\n"
	if !strings.HasPrefix(got, want) {
		t.Errorf("stdout starts with\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "<") {
		t.Errorf("HTML printed outside a notebook:\n%s", got)
	}
	if n := strings.Count(got, "\n"); n < 9 {
		t.Errorf("only %d lines printed", n)
	}
}
