package experiments

import (
	"fmt"
	"slices"

	"github.com/gonnsight/gonnsight/display"
	"github.com/gonnsight/gonnsight/tensor"
)

// Map is an experiment's result: a [len(Rows), len(Cols)] matrix (row-major Data) with
// tick labels and titles, e.g. the metric per (layer, position).
type Map struct {
	Data                      []float32
	Rows, Cols                []string
	RowTitle, ColTitle, Title string
	// Clean and Corrupt are the metric on the unpatched clean and corrupted runs (patching;
	// for ablation, Clean is the metric without any ablation).
	Clean, Corrupt float64
	// Value names what a cell holds ("metric" when empty).
	Value     string
	baselines bool
}

// Tensor is the map as a [rows, cols] tensor, its axes named after the row and column titles.
func (m *Map) Tensor() *tensor.Tensor {
	t := tensor.New(slices.Clone(m.Data), len(m.Rows), len(m.Cols))
	if m.RowTitle != "" && m.ColTitle != "" {
		t = t.WithAxes(axisName(m.RowTitle), axisName(m.ColTitle))
	}
	return t
}

func axisName(title string) string {
	if title == "position" {
		return "pos"
	}
	return title
}

// Shape is [rows, cols].
func (m *Map) Shape() []int { return []int{len(m.Rows), len(m.Cols)} }

// At is the value at row r, column c (negative indices count from the end).
func (m *Map) At(r, c int) float32 {
	R, C := len(m.Rows), len(m.Cols)
	if r < 0 {
		r += R
	}
	if c < 0 {
		c += C
	}
	if r < 0 || r >= R || c < 0 || c >= C {
		panic(fmt.Sprintf("experiments: At(%d, %d) is outside the %d × %d map (%s × %s)", r, c, R, C, m.RowTitle, m.ColTitle))
	}
	return m.Data[r*C+c]
}

// Normalized is (value − Corrupt) / (Clean − Corrupt): 0 where a patch changes nothing, 1
// where it restores the clean metric. It is an error when the two runs' metrics are equal.
func (m *Map) Normalized() (*Map, error) {
	if !m.baselines {
		return nil, fmt.Errorf("experiments: %q has no clean and corrupted baselines to normalize by", m.Title)
	}
	den := m.Clean - m.Corrupt
	if den == 0 {
		return nil, fmt.Errorf("experiments: the clean and corrupted runs give the same metric (%g): nothing to normalize by", m.Clean)
	}
	n := *m
	n.Data = make([]float32, len(m.Data))
	for i, v := range m.Data {
		n.Data[i] = float32((float64(v) - m.Corrupt) / den)
	}
	n.Title = m.Title + " (normalized: 0 = corrupted, 1 = clean)"
	n.Value = "fraction of the clean metric restored"
	return &n, nil
}

// String is the map as a table of numbers.
func (m *Map) String() string {
	return display.HeatmapText(m.Data, len(m.Rows), len(m.Cols), m.Rows, m.Cols, m.title())
}

// Show displays the map as a heatmap in a notebook (a table of numbers elsewhere), with its
// axis titles; opts adjust the colour scale (display.Center, display.Sequential, ...).
func (m *Map) Show(opts ...display.Option) {
	opts = append([]display.Option{display.Axes(m.RowTitle, m.ColTitle), display.ValueTitle(m.ValueTitle())}, opts...)
	display.ShowHeatmap(m.Data, len(m.Rows), len(m.Cols), m.Rows, m.Cols, m.title(), opts...)
}

// ValueTitle is what the cells measure.
func (m *Map) ValueTitle() string {
	if m.Value != "" {
		return m.Value
	}
	return "metric"
}

func (m *Map) title() string {
	t := m.Title
	if m.RowTitle != "" {
		t += fmt.Sprintf(" (rows: %s, columns: %s)", m.RowTitle, m.ColTitle)
	}
	if m.baselines {
		t += fmt.Sprintf("; clean %.4g, corrupted %.4g", m.Clean, m.Corrupt)
	}
	return t
}
