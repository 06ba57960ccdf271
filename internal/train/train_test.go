package train

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
)

func TestDetag(t *testing.T) {
	in := "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, (/( it/pps said/vbd )/) ./.\n\n\n\tAtlanta's/np$ 1/2/cd mile/nn ./.\n"
	want := "The jury said \"no evidence\", (it said).\nAtlanta's 1/2 mile.\n"
	if got := Detag(in); got != want {
		t.Errorf("Detag = %q\nwant    %q", got, want)
	}
}

func TestInductionLosses(t *testing.T) {
	// seg 4: first copy = indices 0..2, second copy = indices 4..6 (index 3 predicts the
	// second copy's first token, which nothing announces).
	row := []float32{1, 1, 1, 100, 0.5, 0.5, 0.5, 100}
	first, second := InductionLosses([][]float32{row}, 4)
	if first != 1 || second != 0.5 {
		t.Errorf("InductionLosses = %g, %g; want 1, 0.5", first, second)
	}
}

func TestBatchIsSeededAndRepeats(t *testing.T) {
	d := &Data{Vocab: 50, EOS: 49}
	for i := 0; i < 2000; i++ {
		d.Train = append(d.Train, int32(i%49))
	}
	mix := Mix{Batch: 4, Ctx: 32, Repeat: 1, SegMin: 8, SegMax: 16}
	a, b := d.Batch(1, 7, mix), d.Batch(1, 7, mix)
	if !equal32(a, b) {
		t.Fatal("the same seed and step gave different batches")
	}
	if equal32(a, d.Batch(1, 8, mix)) {
		t.Error("two steps gave the same batch")
	}
	// With repeat=1 every row is periodic with a period between SegMin and SegMax.
	for r := 0; r < 4; r++ {
		row := a[r*33 : (r+1)*33]
		ok := false
		for p := 8; p <= 16 && !ok; p++ {
			ok = true
			for i := p; i < len(row); i++ {
				if row[i] != row[i-p] {
					ok = false
					break
				}
			}
		}
		if !ok {
			t.Errorf("row %d is not a repeated segment: %v", r, row)
		}
	}
}

func TestLRSchedule(t *testing.T) {
	o := Defaults()
	o.Steps, o.Warmup, o.LR, o.MinLR = 100, 10, 1, 0.1
	if got := o.lr(5); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("lr(5) = %g, want 0.5 (warm-up)", got)
	}
	if got := o.lr(10); math.Abs(got-1) > 1e-12 {
		t.Errorf("lr(10) = %g, want the peak 1", got)
	}
	if got := o.lr(100); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("lr(100) = %g, want the floor 0.1", got)
	}
}

func TestValidate(t *testing.T) {
	o := Defaults()
	o.Embd = 130
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "divisible") {
		t.Errorf("Validate(embd 130, heads 4) = %v", err)
	}
	o = Defaults()
	o.Repeat = 2
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--repeat") {
		t.Errorf("Validate(repeat 2) = %v", err)
	}
}

// toyDocs is a corpus with structure a tiny model learns in a few steps.
func toyDocs() []Doc {
	var docs []Doc
	words := strings.Fields("the jury said that the city of atlanta had a primary election and the county court was in session")
	for i := 0; i < 50; i++ {
		var b strings.Builder
		for j := 0; j < 400; j++ {
			b.WriteString(words[(i+j*j)%len(words)])
			b.WriteString(" ")
			if j%11 == 10 {
				b.WriteString(".\n")
			}
		}
		docs = append(docs, Doc{Name: "doc" + string(rune('a'+i%26)), Text: b.String()})
	}
	return docs
}

func tinyOptions() Options {
	o := Defaults()
	o.Vocab, o.Layers, o.Heads, o.Embd, o.Ctx, o.Batch, o.Steps = 300, 1, 2, 16, 32, 4, 6
	o.SegMin, o.SegMax = 4, 8
	o.Warmup, o.EvalEvery, o.EvalRows, o.CheckpointEvery, o.InductionSteps = 2, 3, 2, 2, 2
	o.ShortCtx, o.ShortBatch, o.ShortSteps = 16, 8, 2 // a first phase of short rows, resumed across
	o.Name = "toy"
	return o
}

// A run is a function of its options and corpus: the same bytes twice, and a run stopped
// half-way and resumed gives the same bytes as an uninterrupted one.
func TestRunIsReproducibleAndResumes(t *testing.T) {
	docs := toyDocs()
	dir := t.TempDir()
	o := tinyOptions()
	runTo := func(name string, stop func(int) bool) (*Report, error) {
		o := o
		o.Stop = stop
		return Run(docs, o, filepath.Join(dir, name), filepath.Join(dir, name+"-work"), "test", &strings.Builder{})
	}
	repA, err := runTo("a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runTo("b", func(step int) bool { return step == 3 }); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("stopped run: err = %v, want ErrInterrupted", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b", "model.safetensors")); err == nil {
		t.Fatal("a stopped run wrote a model")
	}
	repB, err := runTo("b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !repB.Resumed || repA.Resumed {
		t.Errorf("Resumed: a %v, b %v; want false, true", repA.Resumed, repB.Resumed)
	}
	sumA, _ := os.ReadFile(filepath.Join(dir, "a", "SHA256SUMS"))
	sumB, _ := os.ReadFile(filepath.Join(dir, "b", "SHA256SUMS"))
	if len(sumA) == 0 || string(sumA) != string(sumB) {
		t.Errorf("uninterrupted and resumed runs differ:\n%s\n%s", sumA, sumB)
	}
	if len(repB.History) != o.Steps || repB.History[o.Steps-1].Val == 0 || repB.History[o.Steps-1].Copy == 0 {
		t.Errorf("history after resume: %d points, last %+v", len(repB.History), repB.History[len(repB.History)-1])
	}
	// Training lowered the loss and the model loads.
	if h := repA.History; h[len(h)-1].Loss >= h[0].Loss {
		t.Errorf("loss went from %g to %g", h[0].Loss, h[len(h)-1].Loss)
	}
	eng, err := engine.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gpt2.LoadDir(filepath.Join(dir, "a"), eng.Backend); err != nil {
		t.Errorf("the trained model does not load: %v", err)
	}
	for _, f := range []string{"README.md", "loss.svg", "training.json", "heldout.txt"} {
		if _, err := os.Stat(filepath.Join(dir, "a", f)); err != nil {
			t.Error(err)
		}
	}
	// Redraw rewrites the card from training.json and leaves the model alone.
	card := filepath.Join(dir, "a", "README.md")
	before, _ := os.ReadFile(card)
	if err := os.WriteFile(card, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Redraw(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(card); string(after) != string(before) {
		t.Errorf("Redraw wrote another card than the run:\n%s\nvs\n%s", after, before)
	}
	if err := WriteSums(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	// Other options do not resume a checkpoint they did not make.
	o.Seed++
	if _, err := runTo("a", nil); err == nil || !strings.Contains(err.Error(), "other options") {
		t.Errorf("resuming with another seed: err = %v", err)
	}
}

// Sinusoidal positions have the spread asked for, and neighbours are alike while distant
// positions are not: what makes "attend to the previous position" one linear map away.
func TestSinusoids(t *testing.T) {
	const n, dim, std = 128, 128, 0.02
	w := sinusoids(n, dim, std)
	sq := 0.0
	for _, v := range w {
		sq += float64(v) * float64(v)
	}
	if got := math.Sqrt(sq / float64(len(w))); math.Abs(got-std) > 0.002 {
		t.Errorf("spread %.4f, want %.2f", got, std)
	}
	cos := func(a, b int) float64 {
		var ab, aa, bb float64
		for i := 0; i < dim; i++ {
			x, y := float64(w[a*dim+i]), float64(w[b*dim+i])
			ab, aa, bb = ab+x*y, aa+x*x, bb+y*y
		}
		return ab / math.Sqrt(aa*bb)
	}
	if near, far := cos(60, 61), cos(60, 100); !(near > 0.9 && far < 0.6) {
		t.Errorf("cos(60, 61) = %.3f, cos(60, 100) = %.3f: want neighbours alike, distant positions not", near, far)
	}
}

// With Once a repeated row is text holding one segment followed by its copy.
func TestBatchOnce(t *testing.T) {
	d := &Data{Vocab: 5000, EOS: 4999}
	for i := 0; i < 5000; i++ {
		d.Train = append(d.Train, int32(i%4999)) // no id repeats within a window
	}
	mix := Mix{Batch: 8, Ctx: 64, Repeat: 1, SegMin: 8, SegMax: 16, Once: true}
	a := d.Batch(1, 3, mix)
	for r := 0; r < mix.Batch; r++ {
		row := a[r*65 : (r+1)*65]
		found := false
		for n := mix.SegMin; n <= mix.SegMax && !found; n++ {
			for at := 0; at+2*n <= len(row) && !found; at++ {
				found = equal32(row[at:at+n], row[at+n:at+2*n])
			}
		}
		if !found {
			t.Errorf("row %d holds no segment followed by its copy: %v", r, row)
		}
		if equal32(row[:8], row[8:16]) && equal32(row[16:24], row[24:32]) && equal32(row[:8], row[16:24]) {
			t.Errorf("row %d repeats one segment throughout: %v", r, row)
		}
	}
}

func equal32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// With RandomVocab and RandomOnly every repeated row is a segment of random ids below
// RandomVocab; without them, rows are as before (the shipped model's batches).
func TestBatchAlphabet(t *testing.T) {
	d := &Data{Vocab: 5000, EOS: 4999}
	for i := 0; i < 5000; i++ {
		d.Train = append(d.Train, int32(1000+i%3999)) // text ids are all >= 1000
	}
	mix := Mix{Batch: 16, Ctx: 64, Repeat: 1, SegMin: 8, SegMax: 16, RandomVocab: 50, RandomOnly: true}
	for _, id := range d.Batch(1, 3, mix) {
		if id >= 50 {
			t.Fatalf("id %d in a batch of random segments from the ids below 50", id)
		}
	}
	mix.RandomOnly = false // half the segments are spans of the text again
	text, alphabet := 0, 0
	for _, id := range d.Batch(1, 3, mix) {
		switch {
		case id >= 1000:
			text++
		case id < 50:
			alphabet++
		default:
			t.Fatalf("id %d: neither text nor the alphabet", id)
		}
	}
	if text == 0 || alphabet == 0 {
		t.Errorf("%d text and %d alphabet ids; want both", text, alphabet)
	}
}

// An untied run writes lm_head.weight and tie_word_embeddings false, starts its embeddings
// with the spread asked for, reports the alphabet's induction losses, and loads.
func TestRunUntied(t *testing.T) {
	dir := t.TempDir()
	o := tinyOptions()
	o.ShortCtx, o.ShortBatch, o.ShortSteps = 0, 0, 0
	o.Untied, o.EmbStd, o.RandomVocab, o.RandomOnly = true, 0.5, 40, true
	cfg := o.modelConfig(o.Vocab, o.Vocab-1)
	st := initState(cfg, Params(cfg, false), 1, o)
	spread := func(i int) float64 {
		d := st.W[i].Value().([][]float32)
		sq, n := 0.0, 0
		for _, r := range d {
			for _, v := range r {
				sq, n = sq+float64(v)*float64(v), n+1
			}
		}
		return math.Sqrt(sq / float64(n))
	}
	if s := spread(0); math.Abs(s-0.5) > 0.05 {
		t.Errorf("wte spread %.3f, want 0.5", s)
	}
	rep, err := Run(toyDocs(), o, filepath.Join(dir, "out"), filepath.Join(dir, "work"), "test", &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Metrics.AlphabetLoss == nil {
		t.Error("no induction losses on the alphabet")
	}
	p, err := gpt2.LoadDir(filepath.Join(dir, "out"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Config.Tied() || p.Weights["lm_head.weight"] == nil {
		t.Errorf("loaded as tied (%v) or without lm_head.weight", p.Config.Tied())
	}
	card, _ := os.ReadFile(filepath.Join(dir, "out", "README.md"))
	for _, want := range []string{"tie_word_embeddings: false", "spread 0.5", "ids below 40"} {
		if !strings.Contains(string(card), want) {
			t.Errorf("the card does not say %q", want)
		}
	}
}
