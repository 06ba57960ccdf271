package display

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// diffStats compares two runs element by element.
type diffStats struct {
	n          int   // elements compared
	top        []int // indices of the largest |b-a|, largest first
	maxAbs     float64
	maxAt      int
	meanAbs    float64
	lenA, lenB int
	nonFinite  int // pairs whose difference is NaN (left out of the stats)
}

func compare(a, b []float32, k int) diffStats {
	s := diffStats{n: min(len(a), len(b)), lenA: len(a), lenB: len(b), maxAt: -1}
	var idx []int
	var sum float64
	for i := 0; i < s.n; i++ {
		d := math.Abs(float64(b[i]) - float64(a[i]))
		if math.IsNaN(d) {
			s.nonFinite++
			continue
		}
		idx = append(idx, i)
		sum += d
		if s.maxAt < 0 || d > s.maxAbs {
			s.maxAbs, s.maxAt = d, i
		}
	}
	if len(idx) > 0 {
		s.meanAbs = sum / float64(len(idx))
	}
	absDiff := func(i int) float64 { return math.Abs(float64(b[i]) - float64(a[i])) }
	sort.SliceStable(idx, func(x, y int) bool { return absDiff(idx[x]) > absDiff(idx[y]) })
	if k > 0 {
		s.top = idx[:min(k, len(idx))]
	}
	return s
}

func nameOf(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return "#" + strconv.Itoa(i)
}

func (s diffStats) summary(labelA, labelB string, names []string) string {
	var parts []string
	if s.lenA != s.lenB {
		parts = append(parts, fmt.Sprintf("lengths differ: %s has %d, %s has %d; compared the first %d",
			labelA, s.lenA, labelB, s.lenB, s.n))
	}
	line := fmt.Sprintf("%d values; max |%s-%s| = %s", s.n, labelB, labelA, num(float32(s.maxAbs)))
	if s.maxAt >= 0 {
		line += " at " + VisibleToken(nameOf(names, s.maxAt))
	}
	line += fmt.Sprintf("; mean |%s-%s| = %s", labelB, labelA, num(float32(s.meanAbs)))
	if s.nonFinite > 0 {
		line += fmt.Sprintf("; %d NaN differences left out", s.nonFinite)
	}
	return strings.Join(append(parts, line), "\n")
}

func diffHeaders(labelA, labelB string) []string {
	return []string{"rank", "name", labelA, labelB, labelB + "-" + labelA}
}

// diffText compares two runs (say clean and patched logits per token) side by side: the k
// elements with the largest absolute difference, then the max and mean absolute difference.
// names label the elements (indices are used where missing).
func diffText(labelA, labelB string, a, b []float32, names []string, k int) string {
	s := compare(a, b, k)
	var rows [][]string
	for r, i := range s.top {
		rows = append(rows, []string{strconv.Itoa(r + 1), VisibleToken(nameOf(names, i)),
			num(a[i]), num(b[i]), signed(b[i] - a[i])})
	}
	return textTable(diffHeaders(labelA, labelB), rows, map[int]bool{0: true, 2: true, 3: true, 4: true}) +
		"\n" + s.summary(labelA, labelB, names)
}

func signed(v float32) string {
	return fmt.Sprintf("%+.4g", v)
}

// diffHTML is diffText as a table whose difference cells are shaded blue (decrease) to red
// (increase).
func diffHTML(labelA, labelB string, a, b []float32, names []string, k int) string {
	s := compare(a, b, k)
	diffs := make([]float32, len(s.top))
	for r, i := range s.top {
		diffs[r] = b[i] - a[i]
	}
	sc := newScale(diffs, Center(0)) // a difference has a sign even when all shown are increases
	var rows [][]string
	for r, i := range s.top {
		rows = append(rows, []string{strconv.Itoa(r + 1), tok(nameOf(names, i)), num(a[i]), num(b[i]),
			fmt.Sprintf(`<span style="display:inline-block;min-width:4em;padding:0 4px;background:%s">%s</span>`,
				sc.color(diffs[r]).hex(), esc(signed(diffs[r])))})
	}
	h := diffHeaders(labelA, labelB)
	for i := range h {
		h[i] = esc(h[i])
	}
	return `<div class="gns-diff">` +
		htmlTable("gns-diff-table", esc(labelA+" vs "+labelB), h, rows, map[int]bool{0: true, 2: true, 3: true, 4: true}) +
		`<div style="font:12px monospace;white-space:pre-wrap;margin:2px 0">` + esc(s.summary(labelA, labelB, names)) + `</div></div>`
}

// ShowDiff displays the comparison of two runs.
func ShowDiff(labelA, labelB string, a, b []float32, names []string, k int) {
	ShowHTML(diffHTML(labelA, labelB, a, b, names, k), diffText(labelA, labelB, a, b, names, k))
}
