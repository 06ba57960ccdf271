package display

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Candidate is one next-token candidate: its id, logit and softmax probability.
type Candidate struct {
	ID    int
	Logit float32
	Prob  float32
}

// TopK returns the k largest logits, most likely first (ties by lower id), with their
// probabilities under a softmax over all logits. NaN logits count as -Inf.
func TopK(logits []float32, k int) []Candidate {
	if k <= 0 || len(logits) == 0 {
		return nil
	}
	k = min(k, len(logits))
	clean := func(v float32) float64 {
		if math.IsNaN(float64(v)) {
			return math.Inf(-1)
		}
		return float64(v)
	}
	maxL := math.Inf(-1)
	for _, v := range logits {
		maxL = math.Max(maxL, clean(v))
	}
	var sum float64
	if !math.IsInf(maxL, 0) {
		for _, v := range logits {
			sum += math.Exp(clean(v) - maxL)
		}
	}
	ids := make([]int, len(logits))
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(a, b int) bool { return clean(logits[ids[a]]) > clean(logits[ids[b]]) })
	out := make([]Candidate, k)
	for i := range out {
		id := ids[i]
		p := 0.0
		switch {
		case sum > 0:
			p = math.Exp(clean(logits[id])-maxL) / sum
		case math.IsInf(maxL, 1) && math.IsInf(clean(logits[id]), 1):
			p = math.NaN() // several +Inf logits share the mass undefinedly
		}
		out[i] = Candidate{ID: id, Logit: logits[id], Prob: float32(p)}
	}
	return out
}

func tokenOf(tokenString func(int) string, id int) string {
	if tokenString == nil {
		return "#" + strconv.Itoa(id)
	}
	return tokenString(id)
}

// barWidth is the length of topKText's probability bar at probability 1.
const barWidth = 20

// topKText prints candidates as a table of rank, id, token, logit, probability and a bar.
// tokenString turns an id into its text; nil prints "#id".
func topKText(cands []Candidate, tokenString func(int) string) string {
	var rows [][]string
	for i, c := range cands {
		n := 0
		if p := float64(c.Prob); p > 0 {
			n = int(math.Round(math.Min(p, 1) * barWidth))
		}
		rows = append(rows, []string{strconv.Itoa(i + 1), strconv.Itoa(c.ID), VisibleToken(tokenOf(tokenString, c.ID)),
			fmt.Sprintf("%.3f", c.Logit), percent(c.Prob), strings.Repeat("█", n)})
	}
	return textTable([]string{"rank", "id", "token", "logit", "prob", ""}, rows, map[int]bool{0: true, 1: true, 3: true, 4: true})
}

func percent(p float32) string {
	return fmt.Sprintf("%.2f%%", 100*p)
}

// topKHTML renders candidates as a small table with a bar for each probability.
func topKHTML(cands []Candidate, tokenString func(int) string) string {
	var rows [][]string
	for i, c := range cands {
		w := 0.0
		if p := float64(c.Prob); p > 0 {
			w = math.Min(p, 1) * 100
		}
		bar := fmt.Sprintf(`<div style="width:120px;height:10px;background:#eee"><div style="width:%.1f%%;height:10px;background:%s"></div></div>`,
			w, red.hex())
		rows = append(rows, []string{strconv.Itoa(i + 1), strconv.Itoa(c.ID), tok(tokenOf(tokenString, c.ID)),
			fmt.Sprintf("%.3f", c.Logit), percent(c.Prob), bar})
	}
	return htmlTable("gns-topk", "", []string{"rank", "id", "token", "logit", "prob", ""}, rows,
		map[int]bool{0: true, 1: true, 3: true, 4: true})
}

// ShowTopK displays next-token candidates.
func ShowTopK(cands []Candidate, tokenString func(int) string) {
	ShowHTML(topKHTML(cands, tokenString), topKText(cands, tokenString))
}
