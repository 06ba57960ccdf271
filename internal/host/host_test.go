package host_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/engine"
	"github.com/gonnsight/gonnsight/internal/host"
	"github.com/gonnsight/gonnsight/internal/remote"
	"github.com/gonnsight/gonnsight/internal/toy"
	"github.com/gonnsight/gonnsight/nnsight"
)

// testHost serves a host on a Unix socket in a temporary directory, over real HTTP.
type testHost struct {
	*host.Host
	addr, token string
}

func startHost(t testing.TB, cfg host.Config) *testHost {
	t.Helper()
	if cfg.Token == "" {
		var b [16]byte
		rand.Read(b[:])
		cfg.Token = hex.EncodeToString(b[:])
	}
	if cfg.Backend == "" {
		cfg.Backend = "go"
	}
	h, err := host.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "host.sock")
	l, err := host.Listen("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("host: %v", err)
		}
	})
	return &testHost{Host: h, addr: "unix:" + sock, token: cfg.Token}
}

// engine returns an engine whose programs run on the host.
func (th *testHost) engine(t testing.TB) *engine.Engine {
	t.Helper()
	c, err := remote.NewClient(th.addr, th.token)
	if err != nil {
		t.Fatal(err)
	}
	b, err := remote.Dial(c)
	if err != nil {
		t.Fatal(err)
	}
	return engine.New(b, b.String(), "test")
}

// models returns the tiny GPT-2 in this process and through the host.
func models(t *testing.T, th *testHost, opts ...nnsight.Option) (local, viaHost *nnsight.Model) {
	t.Helper()
	local = nnsight.LanguageModel(gpt2.TinyID, append([]nnsight.Option{nnsight.WithBackend("go")}, opts...)...)
	viaHost = nnsight.LanguageModel(gpt2.TinyID, append([]nnsight.Option{nnsight.WithEngine(th.engine(t))}, opts...)...)
	for _, m := range []*nnsight.Model{local, viaHost} {
		if err := m.Load(); err != nil {
			t.Fatal(err)
		}
	}
	return local, viaHost
}

func bitsOf(t *testing.T, x *tensors.Tensor) []byte {
	t.Helper()
	var out []byte
	x.ConstBytes(func(b []byte) { out = bytes.Clone(b) })
	return out
}

// sameBits compares every value two results hold, bit for bit.
func sameBits(t *testing.T, what string, a, b *nnsight.Result) {
	t.Helper()
	if fmt.Sprint(a.Names()) != fmt.Sprint(b.Names()) {
		t.Fatalf("%s: names %v here, %v through the host", what, a.Names(), b.Names())
	}
	for _, n := range a.Names() {
		x, y := a.Get(n), b.Get(n)
		if !x.Shape().Equal(y.Shape()) {
			t.Errorf("%s: %s has shape %s here, %s through the host", what, n, x.Shape(), y.Shape())
			continue
		}
		if !bytes.Equal(bitsOf(t, x), bitsOf(t, y)) {
			xd, _, _ := nnsight.Float32(x)
			yd, _, _ := nnsight.Float32(y)
			t.Errorf("%s: %s differs from the in-process run (max abs diff %g)", what, n, nnsight.MaxAbsDiff(xd, yd))
		}
	}
}

func zero(x *g.Node) *g.Node { return g.ZerosLike(x) }

func TestTraceSaveSetBitIdentical(t *testing.T) {
	th := startHost(t, host.Config{})
	local, viaHost := models(t, th)
	fn := func(tr *nnsight.Tracer) {
		tr.Module("transformer.h.0.mlp").Output().Set(zero)
		tr.Module("transformer.h.1.attn").Output().Save("attn1")
		tr.Module("transformer.h.0.attn.attn_weights").Output().Save("w0")
	}
	want, err := local.Trace("The Eiffel Tower is in", fn)
	if err != nil {
		t.Fatal(err)
	}
	got, err := viaHost.Trace("The Eiffel Tower is in", fn)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "trace", want, got)
	if got.Backend == want.Backend || !bytes.Contains([]byte(got.Backend), []byte("remote")) {
		t.Errorf("the result says it ran on %q", got.Backend)
	}
	// The set took effect on the host: without it the logits differ.
	plain, err := viaHost.Trace("The Eiffel Tower is in", nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(bitsOf(t, plain.Get("logits")), bitsOf(t, got.Get("logits"))) {
		t.Error("zeroing h.0.mlp through the host left the logits unchanged")
	}
	// A repeated trace hits the host's program cache.
	before := th.Stats()
	if _, err := viaHost.Trace("The Eiffel Tower is in", fn); err != nil {
		t.Fatal(err)
	}
	after := th.Stats()
	if after.Compiles != before.Compiles || after.Runs != before.Runs+1 {
		t.Errorf("a repeated trace: compiles %d -> %d, runs %d -> %d; want no compile, one run", before.Compiles, after.Compiles, before.Runs, after.Runs)
	}
	// A second client (a new cell: a fresh engine, so the program travels in full again)
	// hits the host's cache too.
	other := nnsight.LanguageModel(gpt2.TinyID, nnsight.WithEngine(th.engine(t)))
	again, err := other.Trace("The Eiffel Tower is in", fn)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "second client", want, again)
	if s := th.Stats(); s.Compiles != after.Compiles || s.Hits <= after.Hits {
		t.Errorf("a second client's identical trace: compiles %d -> %d, hits %d -> %d", after.Compiles, s.Compiles, after.Hits, s.Hits)
	}
	if s := th.Stats(); len(s.Models) != 1 {
		t.Errorf("the host holds models %v, want one copy of the tiny model", s.Models)
	}
}

func TestInvokesEditsAndCacheBitIdentical(t *testing.T) {
	th := startHost(t, host.Config{})
	local, viaHost := models(t, th)
	fn := func(tr *nnsight.Tracer) {
		tr.Invoke("Hello world, this is", func(iv *nnsight.Tracer) {
			iv.Module("transformer.h.1.mlp").Output().Save("mlp1_a")
		})
		tr.Invoke("Short", func(iv *nnsight.Tracer) {
			iv.Module("transformer.h.1").Output().Set(zero)
			iv.Module("transformer.ln_f").Output().Save("lnf_b")
		})
	}
	want, err := local.Trace(nil, fn)
	if err != nil {
		t.Fatal(err)
	}
	got, err := viaHost.Trace(nil, fn)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "invokes", want, got)

	for _, m := range []*nnsight.Model{local, viaHost} {
		if err := m.LoadEdits(edit.New("transformer.h.0.attn", "value", "value_wrapper", edit.Scale(3))); err != nil {
			t.Fatal(err)
		}
	}
	save := func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.attn.value_wrapper").Output().Save("v") }
	want, err = local.Trace("edits travel as graph ops", save)
	if err != nil {
		t.Fatal(err)
	}
	got, err = viaHost.Trace("edits travel as graph ops", save)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "edit", want, got)

	cw, err := local.RunWithCache("a cache of every module", "transformer.h.*.mlp")
	if err != nil {
		t.Fatal(err)
	}
	cg, err := viaHost.RunWithCache("a cache of every module", "transformer.h.*.mlp")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cw.Names()) != fmt.Sprint(cg.Names()) || len(cw.Names()) == 0 {
		t.Fatalf("cache names %v here, %v through the host", cw.Names(), cg.Names())
	}
	for _, n := range cw.Names() {
		if !bytes.Equal(bitsOf(t, cw.Get(n)), bitsOf(t, cg.Get(n))) {
			t.Errorf("cache %s differs through the host", n)
		}
	}
}

func TestGenerateAndGradientsBitIdentical(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  host.Config
	}{
		{"cache resident on the host", host.Config{InlineBytes: 1024}},
		{"every output sent back", host.Config{InlineBytes: -1}},
		{"host full: outputs sent back", host.Config{InlineBytes: 1024, MaxResidentBytes: 1}},
	} {
		t.Run(c.name, func(t *testing.T) { generateAndGradients(t, c.cfg) })
	}
}

func generateAndGradients(t *testing.T, cfg host.Config) {
	th := startHost(t, cfg)
	local, viaHost := models(t, th)
	fn := func(tr *nnsight.Tracer) {
		if tr.Step() == 1 {
			tr.Module("transformer.h.0.mlp").Output().Set(zero)
		}
		tr.Logits().Save("logits_step")
	}
	for _, opts := range [][]nnsight.GenOption{{nnsight.IgnoreEOS()}, {nnsight.IgnoreEOS(), nnsight.NoCache()}} {
		want, err := local.Generate("Once upon a time", 5, fn, opts...)
		if err != nil {
			t.Fatal(err)
		}
		before := th.Stats()
		got, err := viaHost.Generate("Once upon a time", 5, fn, opts...)
		if err != nil {
			t.Fatal(err)
		}
		after := th.Stats()
		// With the cache resident, only the first step's zeros and each step's ids travel
		// (about 18 KB here); sent back and forth, the cache is 5 times that.
		sent := after.InputBytes - before.InputBytes
		cached := len(opts) == 1
		if resident := cfg.InlineBytes > 0 && cfg.MaxResidentBytes == 0; cached && resident && sent > 25000 {
			t.Errorf("%d bytes of inputs for 5 steps: the cache travelled instead of staying on the host", sent)
		} else if cached && !resident && sent < 60000 {
			t.Errorf("%d bytes of inputs for 5 steps with the cache sent back: the test cannot tell", sent)
		}
		if cfg.InlineBytes < 0 && after.ResidentBytes != 0 {
			t.Errorf("with InlineBytes < 0 the host holds %d bytes", after.ResidentBytes)
		}
		if fmt.Sprint(want.Tokens) != fmt.Sprint(got.Tokens) {
			t.Errorf("tokens %v here, %v through the host", want.Tokens, got.Tokens)
		}
		ws, gs := want.Saved.List("logits_step"), got.Saved.List("logits_step")
		if len(ws) != 5 || len(gs) != 5 {
			t.Fatalf("saved %d and %d steps, want 5", len(ws), len(gs))
		}
		for i := range ws {
			if !bytes.Equal(bitsOf(t, ws[i]), bitsOf(t, gs[i])) {
				t.Errorf("step %d logits differ through the host", i)
			}
		}
	}

	grad := func(tr *nnsight.Tracer) {
		logits := tr.Logits()
		h0 := tr.Module("transformer.h.0").Output()
		tr.Backward(func() *g.Node {
			l := logits.Node()
			return g.ReduceAllSum(g.Slice(l, g.AxisRange(), g.AxisElem(-1), g.AxisRange(0, 3)))
		}, func() { h0.Grad().Save("g_h0") })
	}
	want, err := local.Trace("gradients", grad)
	if err != nil {
		t.Fatal(err)
	}
	got, err := viaHost.Trace("gradients", grad)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "gradient", want, got)
}

func TestWeightsStayOnTheHost(t *testing.T) {
	th := startHost(t, host.Config{})
	local, viaHost := models(t, th)
	// Reading a weight here fetches it; the values are the host's.
	name := "transformer.h.1.mlp.c_fc.weight"
	if !bytes.Equal(bitsOf(t, local.Weights()[name]), bitsOf(t, viaHost.Weights()[name])) {
		t.Errorf("weight %s read through the host differs", name)
	}
	if fmt.Sprint(local.Paths()) != fmt.Sprint(viaHost.Paths()) {
		t.Error("the module tree built from the host's config differs")
	}
}

func equalBits(a, b *tensors.Tensor) bool {
	var x, y []byte
	a.ConstBytes(func(v []byte) { x = bytes.Clone(v) })
	b.ConstBytes(func(v []byte) { y = bytes.Clone(v) })
	return bytes.Equal(x, y)
}

func TestScanAndUserModelsThroughTheHost(t *testing.T) {
	th := startHost(t, host.Config{})
	local, viaHost := models(t, th)
	fn := func(tr *nnsight.Tracer) { tr.Module("transformer.h.0.mlp").Output().Save("x") }
	a, err := local.Scan("scan me", fn)
	if err != nil {
		t.Fatal(err)
	}
	b, err := viaHost.Scan("scan me", fn)
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("scan differs through the host:\n%s\n%s", a, b)
	}
	// A user-defined model: its weights are the client's, so they travel with each run.
	x := tensors.FromValue([][]float32{{1}, {2}, {3}})
	ul := nnsight.New(toy.M(), nnsight.WithSeed(3), nnsight.WithBackend("go"))
	uh := nnsight.New(toy.M(), nnsight.WithSeed(3), nnsight.WithEngine(th.engine(t)))
	save := func(tr *nnsight.Tracer) {
		tr.Module("layer2.layer").Output().Save("l2")
		tr.Module("layer1").Output().Set(func(n *g.Node) *g.Node { return g.MulScalar(n, 2) })
	}
	want, err := ul.Trace(x, save)
	if err != nil {
		t.Fatal(err)
	}
	got, err := uh.Trace(tensors.FromValue([][]float32{{1}, {2}, {3}}), save) // a tensor used on one backend stays there
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "user-defined model", want, got)
}

// TestNothingHeavyTravels: a trace sends only its token ids, and TransposedLMHead's
// transposed embedding is made on the host from its resident weight, bit-identical.
func TestNothingHeavyTravels(t *testing.T) {
	th := startHost(t, host.Config{})
	local, viaHost := models(t, th, nnsight.TransposedLMHead())
	fn := func(tr *nnsight.Tracer) { tr.Module("transformer.h.1").Output().Save("h1") }
	want, err := local.Trace("the transposed head", fn)
	if err != nil {
		t.Fatal(err)
	}
	before := th.Stats()
	got, err := viaHost.Trace("the transposed head", fn)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "TransposedLMHead", want, got)
	sent := th.Stats().InputBytes - before.InputBytes
	if sent > 1024 {
		t.Errorf("a trace of a few tokens sent %d bytes of inputs to the host: weights travelled", sent)
	}
	if s := th.Stats(); s.Runs != before.Runs+1 {
		t.Errorf("the trace took %d runs on the host, want 1", s.Runs-before.Runs)
	}
}

func equalBytes(a, b []byte) bool { return bytes.Equal(a, b) }

// TestKeepOnTheHost: with a remote host and no notebook session, nnsight.Keep keeps a value
// on the host (a saved value still resident there goes by reference) and another process
// (here: another client) reads it back with Kept.
func TestKeepOnTheHost(t *testing.T) {
	th := startHost(t, host.Config{InlineBytes: 1024})
	t.Setenv(nnsight.EnvSessionDir, "")
	t.Setenv(remote.EnvRemote, th.addr)
	t.Setenv(remote.EnvToken, th.token)
	eng, err := engine.Default() // the process's engine: this host, from the environment
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := eng.Backend.(*remote.Backend); !ok {
		t.Skipf("the process's default engine was made before this test (%s)", eng.Name)
	}
	m := nnsight.LanguageModel(gpt2.TinyID)
	res, err := m.Trace("keep this", func(tr *nnsight.Tracer) { tr.Module("transformer.h.1").Output().Save("h1") })
	if err != nil {
		t.Fatal(err)
	}
	before := th.Stats()
	if err := nnsight.Keep("steer", res.Get("h1")); err != nil {
		t.Fatal(err)
	}
	if sent := th.Stats().InputBytes - before.InputBytes; sent != 0 {
		t.Errorf("keeping a value resident on the host sent %d bytes", sent)
	}
	// The saved value is still this client's: it reads back and feeds another trace.
	if _, err := m.Trace("keep this", func(tr *nnsight.Tracer) { tr.Module("transformer.h.1").Output().Set(res.Get("h1")) }); err != nil {
		t.Errorf("a kept value used again by its client: %v", err)
	}
	if err := nnsight.Keep("small", tensors.FromValue([]float32{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	other, err := th.engine(t).Backend.(*remote.Backend).Kept("steer")
	if err != nil {
		t.Fatal(err)
	}
	if !equalBits(other, res.Get("h1")) {
		t.Error("the kept value read by another client differs")
	}
	got, err := nnsight.Kept("small")
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := nnsight.Float32(got); fmt.Sprint(d) != "[1 2 3]" {
		t.Errorf("kept small = %v", d)
	}
	if names := nnsight.KeptNames(); fmt.Sprint(names) != "[small steer]" {
		t.Errorf("KeptNames = %v", names)
	}
	if _, err := nnsight.Kept("nope"); err == nil || !strings.Contains(err.Error(), "small, steer") {
		t.Errorf("Kept of a missing name: %v", err)
	}
}
