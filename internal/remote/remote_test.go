package remote

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestGeneratedCodeIsCurrent: ops_gen.go is what the generator writes from the compute
// version in go.mod.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ops_gen.go")
	cmd := exec.Command("go", "run", "./gen", "-out", out)
	cmd.Env = append(os.Environ(), "GOEXPERIMENT=simd")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, b)
	}
	want, _ := os.ReadFile(out)
	got, _ := os.ReadFile("ops_gen.go")
	if !bytes.Equal(want, got) {
		t.Error("ops_gen.go is stale: run go generate ./internal/remote")
	}
}

// recorderOnly is a recording backend with no host: tests replay its programs themselves.
func recorderOnly(t testing.TB) (*Backend, compute.Backend) {
	t.Helper()
	shadow, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	host, err := gobackend.New("")
	if err != nil {
		t.Fatal(err)
	}
	return &Backend{shadow: shadow, caps: host.Capabilities(), hostName: "go"}, host
}

// sample is a graph touching many kinds of ops: dot products, fused softmax, gathers,
// reductions, comparisons, padding, concatenation, sorting, arg-max, and a While loop with
// closures.
func sample(gr *g.Graph) []*g.Node {
	x := g.Parameter(gr, "x", shapes.Make(dtypes.Float32, 3, 4))
	idx := g.Parameter(gr, "idx", shapes.Make(dtypes.Int32, 2, 1))
	w := g.Mul(g.Iota(gr, shapes.Make(dtypes.Float32, 4, 5), 0), g.Const(gr, float32(0.25)))
	h := g.Tanh(g.MatMul(x, w))
	sm := g.Softmax(h, -1)
	rows := g.Gather(h, idx)
	red := g.ReduceSum(g.Where(g.GreaterThan(h, g.ZerosLike(h)), h, g.Neg(h)), 1)
	pad := g.Pad(x, g.Const(gr, float32(-1)), compute.PadAxis{Start: 1, End: 2}, compute.PadAxis{Interior: 1})
	cat := g.Concatenate([]*g.Node{x, g.Sqrt(g.Abs(x))}, 0)
	srt := g.Sort(g.Reshape(x, 12), 0, true)
	am := g.ArgMax(h, -1)
	cond := g.NewClosure(gr, func(gr *g.Graph) []*g.Node {
		i := g.Parameter(gr, "i", shapes.Make(dtypes.Int32))
		_ = g.Parameter(gr, "acc", shapes.Make(dtypes.Float32, 3, 4))
		return []*g.Node{g.LessThan(i, g.Const(gr, int32(4)))}
	})
	body := g.NewClosure(gr, func(gr *g.Graph) []*g.Node {
		i := g.Parameter(gr, "i", shapes.Make(dtypes.Int32))
		acc := g.Parameter(gr, "acc", shapes.Make(dtypes.Float32, 3, 4))
		return []*g.Node{g.Add(i, g.Const(gr, int32(1))), g.Add(g.Mul(acc, g.Const(gr, float32(1.5))), g.Const(gr, float32(0.1)))}
	})
	loop := g.While(cond, body, g.Const(gr, int32(0)), x)
	return []*g.Node{sm, rows, red, pad, cat, srt, am, loop[1]}
}

func sampleInputs() []*tensors.Tensor {
	return []*tensors.Tensor{
		tensors.FromValue([][]float32{{1, -2, 3, 0.5}, {0, 1, -1, 2}, {4, -3, 0.25, 1}}),
		tensors.FromValue([][]int32{{2}, {0}}),
	}
}

func bitsOf(t *tensors.Tensor) []byte {
	var b []byte
	t.ConstBytes(func(x []byte) { b = bytes.Clone(x) })
	return b
}

// TestReplayIsBitIdentical: a program recorded by the recorder and replayed on the Go
// backend computes exactly what the same graph computes built on it directly.
func TestReplayIsBitIdentical(t *testing.T) {
	rec, hostB := recorderOnly(t)
	direct := g.NewGraph(hostB, "sample")
	outs := sample(direct)
	direct.Compile(outs...)
	want := direct.Run(sampleInputs()[0], sampleInputs()[1])

	var prog *Program
	rec.onCompile = func(p *Program) { prog = p }
	recorded := g.NewGraph(rec, "sample")
	routs := sample(recorded)
	recorded.Compile(routs...)
	if prog == nil {
		t.Fatal("no program recorded")
	}
	rep, err := Replay(hostB, "sample", prog.Bytes, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := rep.Builder.Compile()
	if err != nil {
		t.Fatal(err)
	}
	var bufs []compute.Buffer
	for _, in := range sampleInputs() {
		b, err := in.Buffer(hostB, 0)
		if err != nil {
			t.Fatal(err)
		}
		bufs = append(bufs, b)
	}
	got, err := exe.Execute(bufs, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d outputs replayed, %d direct", len(got), len(want))
	}
	for i := range want {
		gt, err := tensors.FromBuffer(got[i])
		if err != nil {
			t.Fatal(err)
		}
		if !gt.Shape().Equal(want[i].Shape()) || !bytes.Equal(bitsOf(gt), bitsOf(want[i])) {
			t.Errorf("output %d: replayed %s %v, direct %s %v", i, gt.Shape(), gt, want[i].Shape(), want[i])
		}
	}
	if prog.NumOps < 20 || rep.NumOps != prog.NumOps {
		t.Errorf("recorded %d ops, replayed %d", prog.NumOps, rep.NumOps)
	}
}

// TestRecorderFollowsHostCapabilities: an op the host lacks is not implemented here either,
// so GoMLX decomposes it (a fused softmax becomes plain ops) and the host can run it.
func TestRecorderFollowsHostCapabilities(t *testing.T) {
	noFused := Limits{Denied: map[string]bool{"FusedSoftmax": true}}
	for _, hostHasIt := range []bool{true, false} {
		rec, hostB := recorderOnly(t)
		if !hostHasIt {
			rec.caps = rec.caps.Clone()
			delete(rec.caps.Operations, compute.OpTypeFusedSoftmax)
		}
		var prog *Program
		rec.onCompile = func(p *Program) { prog = p }
		gr := g.NewGraph(rec, "softmax")
		x := g.Parameter(gr, "x", shapes.Make(dtypes.Float32, 2, 3))
		gr.Compile(g.Softmax(x, -1))
		_, err := Replay(hostB, "check", prog.Bytes, noFused)
		if usesFused := err != nil; usesFused != hostHasIt {
			t.Errorf("host has FusedSoftmax: %v; the program uses it: %v (%v)", hostHasIt, usesFused, err)
		}
	}
}

// FuzzReplay: no byte string makes Replay panic or hang; it returns a program or an error.
func FuzzReplay(f *testing.F) {
	rec, hostB := recorderOnly(f)
	var prog *Program
	rec.onCompile = func(p *Program) { prog = p }
	gr := g.NewGraph(rec, "fuzz")
	gr.Compile(sample(gr)...)
	f.Add(prog.Bytes)
	f.Add([]byte(programMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Replay(hostB, "fuzz", b, Limits{MaxValueBytes: 1 << 20, MaxTotalBytes: 16 << 20, MaxOps: 10000})
		if err == nil && rep == nil {
			t.Fatal("no program and no error")
		}
	})
}

// TestFLOPsLimit: dot products are counted from their shapes while the program is replayed,
// and a program over the limit is refused before it compiles.
func TestFLOPsLimit(t *testing.T) {
	rec, hostB := recorderOnly(t)
	var prog *Program
	rec.onCompile = func(p *Program) { prog = p }
	gr := g.NewGraph(rec, "dots")
	x := g.Parameter(gr, "x", shapes.Make(dtypes.Float32, 64, 32))
	w := g.Parameter(gr, "w", shapes.Make(dtypes.Float32, 32, 16))
	gr.Compile(g.MatMul(g.MatMul(x, w), g.Transpose(w, 0, 1))) // 2·64·16·32 + 2·64·32·16
	rep, err := Replay(hostB, "dots", prog.Bytes, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 4.0 * 64 * 16 * 32; rep.FLOPs != want {
		t.Errorf("counted %g FLOPs, want %g", rep.FLOPs, want)
	}
	if _, err := Replay(hostB, "dots", prog.Bytes, Limits{MaxFLOPs: 1e5}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("FLOPs")) {
		t.Errorf("a program over the FLOPs limit: %v", err)
	}
}
