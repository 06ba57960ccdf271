package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/safetensors"
	"github.com/gonnsight/gonnsight/tokenizer"
)

// ModelFiles are the files of a trained model that SHA256SUMS covers: the same options and
// corpus give the same bytes. The card, the report and the picture also record timings.
var ModelFiles = []string{"config.json", "model.safetensors", "vocab.json", "merges.txt", "heldout.txt"}

// HeldOutSampleBytes bounds heldout.txt, the start of the held-out documents kept beside the
// model so that tests can score it offline (the corpus permits redistribution).
const HeldOutSampleBytes = 16 << 10

func export(out string, cfg gpt2.Config, tok *tokenizer.Tokenizer, w []*tensors.Tensor, params []Param, rep *Report, docs []Doc) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := gpt2.WriteConfig(filepath.Join(out, "config.json"), cfg); err != nil {
		return err
	}
	var ts []safetensors.Tensor
	for i, p := range params {
		ts = append(ts, safetensors.F32(p.Name, p.Shape, tensors.MustCopyFlatData[float32](w[i])))
	}
	if err := safetensors.Write(filepath.Join(out, "model.safetensors"), ts,
		map[string]string{"format": "pt", "generator": "gonnsight train (" + rep.Options.Name + ")"}); err != nil {
		return err
	}
	var sample strings.Builder
	for i, d := range docs {
		if IsHeldOut(i) && sample.Len() < HeldOutSampleBytes {
			sample.WriteString(d.Text)
		}
	}
	s := sample.String()
	if len(s) > HeldOutSampleBytes {
		s = s[:strings.LastIndexByte(s[:HeldOutSampleBytes], '\n')+1]
	}
	files := map[string][]byte{
		"vocab.json":  tok.VocabJSON(),
		"merges.txt":  tok.MergesTXT(),
		"heldout.txt": []byte(s),
		"loss.svg":    LossSVG(rep.History, rep.Metrics.UnigramLoss),
		"README.md":   []byte(Card(rep)),
	}
	rj, _ := json.MarshalIndent(rep, "", "  ")
	files["training.json"] = append(rj, '\n')
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(out, n), files[n], 0o644); err != nil {
			return err
		}
	}
	return WriteSums(out)
}

// WriteSums writes SHA256SUMS (sha256sum's format) of ModelFiles in dir.
func WriteSums(dir string) error {
	var b strings.Builder
	for _, n := range ModelFiles {
		h, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", h, n)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// bar is the progress line: step, percentage, loss, speed and time left.
type bar struct {
	w           io.Writer
	total       int
	start, last time.Time
	first       int
	lastVal     float64
	lastCopy    float64
	ema         float64
}

func newBar(w io.Writer, total int) *bar {
	return &bar{w: w, total: total, start: time.Now(), first: -1}
}

func (b *bar) update(step int, loss, val, copyLoss float64) {
	if b.first < 0 {
		b.first = step - 1
		b.ema = loss
	}
	b.ema = 0.95*b.ema + 0.05*loss
	if val > 0 {
		b.lastVal = val
	}
	if copyLoss > 0 {
		b.lastCopy = copyLoss
	}
	if time.Since(b.last) < 500*time.Millisecond && step != b.total {
		return
	}
	b.last = time.Now()
	el := time.Since(b.start).Seconds()
	rate := float64(step-b.first) / el
	const width = 24
	fill := width * step / b.total
	line := fmt.Sprintf("\r[%s%s] %d/%d %3d%%  loss %.3f", strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		step, b.total, 100*step/b.total, b.ema)
	if b.lastVal > 0 {
		line += fmt.Sprintf("  held-out %.3f", b.lastVal)
	}
	if b.lastCopy > 0 {
		line += fmt.Sprintf("  copy %.2f", b.lastCopy)
	}
	if rate > 0 {
		left := time.Duration(float64(b.total-step)/rate) * time.Second
		line += fmt.Sprintf("  %.2f steps/s  ETA %s ", rate, left.Round(time.Second))
	}
	fmt.Fprint(b.w, line)
}

func (b *bar) finish() { fmt.Fprintln(b.w) }

// Redraw rewrites a trained model's card (README.md) and loss.svg from its training.json,
// for when their templates change; the model files and SHA256SUMS are left alone.
func Redraw(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "training.json"))
	if err != nil {
		return fmt.Errorf("%w (--redraw needs a model that gonnsight train wrote)", err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "training.json"), err)
	}
	// Runs made before these options had their values.
	if rep.Options.SegMax == 0 {
		rep.Options.SegMin, rep.Options.SegMax = 8, rep.Options.Ctx/4
	}
	if rep.Options.PosInit == "" {
		rep.Options.PosInit = "normal"
	}
	if err := os.WriteFile(filepath.Join(dir, "loss.svg"), LossSVG(rep.History, rep.Metrics.UnigramLoss), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(Card(&rep)), 0o644)
}
