package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/module"
)

// Param is one trainable tensor, named as in the Hugging Face file ("h.0.attn.c_attn.weight").
type Param struct {
	Name  string
	Shape []int
	Decay bool // weight decay applies (matrices and embeddings, not biases or LayerNorms)
}

// Params lists the model's parameters in the module tree's order (the order of the
// initial weights, gpt2.InitWeights); weight decay applies to the matrices and the token
// embeddings, and to the position embeddings when decayPositions.
func Params(cfg gpt2.Config, decayPositions bool) []Param {
	var out []Param
	for _, t := range gpt2.InitWeights(cfg, 0) {
		decay := len(t.Shape) == 2 && (decayPositions || t.Name != "wpe.weight")
		out = append(out, Param{Name: t.Name, Shape: t.Shape, Decay: decay})
	}
	return out
}

// Hyper are the optimiser's settings: AdamW with a global gradient-norm clip.
type Hyper struct {
	Beta1, Beta2, Eps, WeightDecay, Clip float64
	DecayPositions                       bool // weight decay on the position embeddings too
}

// programs are the compiled graphs of one configuration: a training step and an evaluation.
type programs struct {
	backend compute.Backend
	cfg     gpt2.Config
	params  []Param
	hyper   Hyper
	// steps by [rows, context]: params, m, v, [lr, 1-beta1^t, 1-beta2^t], ids -> params, m,
	// v, loss, grad norm
	steps map[[2]int]*g.Graph
	eval  *g.Graph // params, ids -> per-token loss [batch, ctx]
	evalB int
}

// forwardLoss runs the GPT-2 module tree on ids[:, :-1] and returns the per-token
// cross-entropy [batch, ctx] against ids[:, 1:].
func forwardLoss(cfg gpt2.Config, params []*g.Node, names []string, ids *g.Node) *g.Node {
	byName := map[string]*g.Node{}
	for i, n := range names {
		byName[n] = params[i]
	}
	gr := ids.Graph()
	c := module.NewCtx(gr, func(name string, spec module.ParamSpec) *g.Node {
		p, ok := byName[strings.TrimPrefix(name, "transformer.")]
		if !ok {
			module.Errorf("no trainable parameter %q", name)
		}
		return p
	})
	dims := ids.Shape().Dimensions
	batch, n := dims[0], dims[1]
	in := g.Slice(ids, g.AxisRange(), g.AxisRange(0, n-1))
	target := g.Slice(ids, g.AxisRange(), g.AxisRange(1, n))
	logits := c.Run(gpt2.New(cfg), in)[0] // [batch, ctx, vocab]
	logp := g.LogSoftmax(logits, -1)
	onehot := g.OneHot(target, cfg.VocabSize, dtypes.Float32)
	_ = batch
	return g.Neg(g.ReduceSum(g.Mul(logp, onehot), -1))
}

func newPrograms(b compute.Backend, cfg gpt2.Config, hp Hyper, batch, evalBatch int) (*programs, error) {
	p := &programs{backend: b, cfg: cfg, params: Params(cfg, hp.DecayPositions), hyper: hp, evalB: evalBatch, steps: map[[2]int]*g.Graph{}}
	if err := p.addStep(batch, cfg.NPositions); err != nil {
		return nil, err
	}
	err := engine.Catch(func() error {
		ge := g.NewGraph(b, "eval")
		we := make([]*g.Node, len(p.params))
		for i, pr := range p.params {
			we[i] = g.Parameter(ge, "w."+pr.Name, shapes.Make(dtypes.Float32, pr.Shape...))
		}
		eids := g.Parameter(ge, "ids", shapes.Make(dtypes.Int32, evalBatch, cfg.NPositions+1))
		if err := ge.Compile(forwardLoss(cfg, we, p.names(), eids)); err != nil {
			return err
		}
		p.eval = ge
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("building the evaluation graph: %w", err)
	}
	return p, nil
}

func (p *programs) names() []string {
	names := make([]string, len(p.params))
	for i, pr := range p.params {
		names[i] = pr.Name
	}
	return names
}

// addStep compiles the training step for rows of [batch, ctx+1] ids: forward, loss,
// gradient, clipping and AdamW in one graph.
func (p *programs) addStep(batch, ctx int) error {
	hp := p.hyper
	err := engine.Catch(func() error {
		gr := g.NewGraph(p.backend, fmt.Sprintf("train_step_%dx%d", batch, ctx))
		np := len(p.params)
		w := make([]*g.Node, np)
		m := make([]*g.Node, np)
		v := make([]*g.Node, np)
		for i, pr := range p.params {
			sh := shapes.Make(dtypes.Float32, pr.Shape...)
			w[i] = g.Parameter(gr, "w."+pr.Name, sh)
			m[i] = g.Parameter(gr, "m."+pr.Name, sh)
			v[i] = g.Parameter(gr, "v."+pr.Name, sh)
		}
		sched := g.Parameter(gr, "schedule", shapes.Make(dtypes.Float32, 3))
		ids := g.Parameter(gr, "ids", shapes.Make(dtypes.Int32, batch, ctx+1))
		loss := g.ReduceAllMean(forwardLoss(p.cfg, w, p.names(), ids))
		grads := g.Gradient(loss, w...)
		sq := g.ScalarZero(gr, dtypes.Float32)
		for _, gd := range grads {
			sq = g.Add(sq, g.ReduceAllSum(g.Square(gd)))
		}
		norm := g.Sqrt(sq)
		scale := g.Min(g.ScalarOne(gr, dtypes.Float32), g.Div(g.Scalar(gr, dtypes.Float32, hp.Clip), g.AddScalar(norm, 1e-6)))
		lr := g.Slice(sched, g.AxisRange(0, 1))
		bc1 := g.Slice(sched, g.AxisRange(1, 2))
		bc2 := g.Slice(sched, g.AxisRange(2, 3))
		lr, bc1, bc2 = g.Reshape(lr), g.Reshape(bc1), g.Reshape(bc2)
		outs := make([]*g.Node, 0, 3*np+2)
		newM := make([]*g.Node, np)
		newV := make([]*g.Node, np)
		for i := range w {
			gd := g.Mul(grads[i], scale)
			newM[i] = g.Add(g.MulScalar(m[i], hp.Beta1), g.MulScalar(gd, 1-hp.Beta1))
			newV[i] = g.Add(g.MulScalar(v[i], hp.Beta2), g.MulScalar(g.Square(gd), 1-hp.Beta2))
			mhat := g.Div(newM[i], bc1)
			vhat := g.Div(newV[i], bc2)
			upd := g.Div(mhat, g.AddScalar(g.Sqrt(vhat), hp.Eps))
			if p.params[i].Decay {
				upd = g.Add(upd, g.MulScalar(w[i], hp.WeightDecay))
			}
			outs = append(outs, g.Sub(w[i], g.Mul(upd, lr)))
		}
		outs = append(outs, newM...)
		outs = append(outs, newV...)
		outs = append(outs, loss, norm)
		if err := gr.Compile(outs...); err != nil {
			return err
		}
		p.steps[[2]int{batch, ctx}] = gr
		return nil
	})
	if err != nil {
		return fmt.Errorf("building the training graph (%d rows of %d tokens): %w", batch, ctx, err)
	}
	return nil
}

// state is what training changes: weights and AdamW's moments, in Params order.
type state struct {
	W, M, V []*tensors.Tensor
}

// run does one optimiser step and returns the batch's mean loss and the gradient norm
// before clipping.
func (p *programs) run(s *state, ids []int32, mix Mix, lr float64, t int) (loss, norm float64, err error) {
	step, ok := p.steps[[2]int{mix.Batch, mix.Ctx}]
	if !ok {
		return 0, 0, fmt.Errorf("no training graph for %d rows of %d tokens", mix.Batch, mix.Ctx)
	}
	sched := []float32{float32(lr), float32(1 - math.Pow(p.hyper.Beta1, float64(t))), float32(1 - math.Pow(p.hyper.Beta2, float64(t)))}
	in := make([]any, 0, 3*len(s.W)+2)
	for i := range s.W {
		in = append(in, s.W[i], s.M[i], s.V[i])
	}
	in = append(in, tensors.FromFlatDataAndDimensions(sched, 3),
		tensors.FromFlatDataAndDimensions(ids, mix.Batch, mix.Ctx+1))
	var out []*tensors.Tensor
	err = engine.Catch(func() error { out = step.Run(in...); return nil })
	if err != nil {
		return 0, 0, err
	}
	np := len(s.W)
	for _, old := range [][]*tensors.Tensor{s.W, s.M, s.V} {
		for _, t := range old {
			t.FinalizeAll()
		}
	}
	s.W, s.M, s.V = out[:np], out[np:2*np], out[2*np:3*np]
	loss = float64(tensors.ToScalar[float32](out[3*np]))
	norm = float64(tensors.ToScalar[float32](out[3*np+1]))
	out[3*np].FinalizeAll()
	out[3*np+1].FinalizeAll()
	return loss, norm, nil
}

// losses returns the per-token losses [len(rows)][ctx] of rows of ctx+1 ids (padded to the
// evaluation batch with copies of the first row).
func (p *programs) losses(w []*tensors.Tensor, rows [][]int32) ([][]float32, error) {
	ctx := p.cfg.NPositions
	var out [][]float32
	for start := 0; start < len(rows); start += p.evalB {
		flat := make([]int32, 0, p.evalB*(ctx+1))
		for r := 0; r < p.evalB; r++ {
			row := rows[0]
			if start+r < len(rows) {
				row = rows[start+r]
			}
			if len(row) != ctx+1 {
				return nil, fmt.Errorf("evaluation row of %d tokens, want %d", len(row), ctx+1)
			}
			flat = append(flat, row...)
		}
		in := make([]any, 0, len(w)+1)
		for _, t := range w {
			in = append(in, t)
		}
		in = append(in, tensors.FromFlatDataAndDimensions(flat, p.evalB, ctx+1))
		var res []*tensors.Tensor
		if err := engine.Catch(func() error { res = p.eval.Run(in...); return nil }); err != nil {
			return nil, err
		}
		vals := tensors.MustCopyFlatData[float32](res[0])
		res[0].FinalizeAll()
		for r := 0; r < p.evalB && start+r < len(rows); r++ {
			out = append(out, vals[r*ctx:(r+1)*ctx])
		}
	}
	return out, nil
}
