package display

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/tensor"
)

// captured runs show with stdout captured (outside a notebook Show* prints text).
func captured(show func()) string {
	var b bytes.Buffer
	old := stdout
	stdout = &b
	defer func() { stdout = old }()
	show()
	return b.String()
}

func TestTensorRenderersMatchFlatOnes(t *testing.T) {
	m := tensor.Of([][][]float32{{{1, -2, 3}, {0.5, 0, -1}}}) // [1 2 3]: a matrix with a batch axis
	rows, cols := []string{"a", "b"}, []string{"x", "y", "z"}
	got := captured(func() { ShowHeatmapOf(m, rows, cols, "t") })
	want := HeatmapText([]float32{1, -2, 3, 0.5, 0, -1}, 2, 3, rows, cols, "t") + "\n"
	if got != want {
		t.Errorf("ShowHeatmapOf:\n%s\nwant\n%s", got, want)
	}
	if html := heatmapOfHTML(m, rows, cols, "t"); html != heatmapHTML([]float32{1, -2, 3, 0.5, 0, -1}, 2, 3, rows, cols, "t") {
		t.Error("heatmapOfHTML differs from heatmapHTML")
	}
	bad := captured(func() { ShowHeatmapOf(tensor.Zeros(2, 2, 2), nil, nil, "") })
	if !strings.Contains(bad, "[rows, cols]") || !strings.Contains(bad, "[2 2 2]") {
		t.Errorf("a 3-D heatmap shows %q; want an error naming the shape", bad)
	}
	w := tensor.Of([][][][]float32{{{{1, 0}, {0.5, 0.5}}}}) // [1 head, 2, 2]
	if got, want := captured(func() { ShowAttentionOf(w, []string{"A", "B"}) }), attentionGridText(w.Data(), 1, 2, []string{"A", "B"})+"\n"; got != want {
		t.Errorf("ShowAttentionOf:\n%s\nwant\n%s", got, want)
	}
	logits := tensor.Of([][]float32{{0, 2, 1}})
	c := TopKOf(logits, 2)
	if len(c) != 2 || c[0].ID != 1 || c[1].ID != 2 {
		t.Errorf("TopKOf: %+v", c)
	}
}

func TestShowLogitLensOf(t *testing.T) {
	// Two layers, two positions, a vocabulary of three: each cell's top token by hand.
	lens := tensor.Of([][][]float32{
		{{0, 0, 5}, {1, 0, 0}},
		{{0, 3, 0}, {0, 0, 0}},
	})
	vocab := []string{"A", "B", "C"}
	got := captured(func() {
		ShowLogitLensOf(lens, []string{"L0", "L1"}, []string{"x", "y"}, func(id int) string { return vocab[id] })
	})
	p := func(top float64, others ...float64) float32 {
		s := math.Exp(top)
		for _, o := range others {
			s += math.Exp(o)
		}
		return float32(math.Exp(top) / s)
	}
	want := LogitLensText([]string{"L0", "L1"}, []string{"x", "y"},
		[][]string{{"C", "A"}, {"B", "A"}},
		[][]float32{{p(5, 0, 0), p(1, 0, 0)}, {p(3, 0, 0), 1.0 / 3}}) + "\n"
	if got != want {
		t.Errorf("ShowLogitLensOf:\n%s\nwant\n%s", got, want)
	}
}
