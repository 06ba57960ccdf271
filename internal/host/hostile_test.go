package host_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	g "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/host"
	"github.com/gonnsight/gonnsight/internal/remote"
	"github.com/gonnsight/gonnsight/nnsight"
)

func (th *testHost) client(t testing.TB, token string) *remote.Client {
	t.Helper()
	c, err := remote.NewClient(th.addr, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// record records a program with the client's recorder: build gets the main function.
func record(t *testing.T, th *testHost, build func(f compute.Function) []compute.Value) *remote.Program {
	t.Helper()
	b, err := remote.Dial(th.client(t, th.token))
	if err != nil {
		t.Fatal(err)
	}
	bl := b.Builder("hostile")
	outs := build(bl.Main())
	if err := bl.Main().Return(outs, nil); err != nil {
		t.Fatal(err)
	}
	exe, err := bl.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return exe.(interface{ Program() *remote.Program }).Program()
}

func must(v compute.Value, err error) compute.Value {
	if err != nil {
		panic(err)
	}
	return v
}

func run(c *remote.Client, prog []byte, inputs ...remote.Input) error {
	_, err := c.Run(&remote.RunRequest{Name: "hostile", Hash: sha256.Sum256(prog), Program: prog, Inputs: inputs})
	return err
}

func f32(vals ...float32) *remote.Tensor {
	b := make([]byte, 4*len(vals))
	copy(b, dtypes.UnsafeByteSlice(vals))
	return &remote.Tensor{DType: int(dtypes.Float32), Dims: []int{len(vals)}, Data: b}
}

// stillServes checks that the host still runs an honest trace, bit for bit.
func stillServes(t *testing.T, th *testHost) {
	t.Helper()
	m := nnsight.LanguageModel(gpt2.TinyID, nnsight.WithEngine(th.engine(t)))
	if _, err := m.Trace("still here", nil); err != nil {
		t.Fatalf("after a hostile request, an honest trace fails: %v", err)
	}
}

func wantErr(t *testing.T, what string, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: the host accepted it", what)
		return
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("%s: error %q does not say %q", what, err, substr)
	}
}

func TestTokenRequired(t *testing.T) {
	th := startHost(t, host.Config{})
	for _, tok := range []string{"", "wrong", th.token + "x", th.token[:len(th.token)-1]} {
		_, err := th.client(t, tok).Hello()
		var he *remote.HostError
		if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
			t.Errorf("token %q: got %v, want 401", tok, err)
		}
	}
	if th.Stats().Refused < 4 {
		t.Errorf("refused %d requests, want 4", th.Stats().Refused)
	}
	if _, err := host.New(host.Config{Backend: "go"}); err == nil {
		t.Error("a host without a token started")
	}
}

func TestHostilePrograms(t *testing.T) {
	th := startHost(t, host.Config{Limits: remote.Limits{MaxValueBytes: 64 << 20, Denied: map[string]bool{"Cos": true}},
		RunTimeout: 20 * time.Second})
	c := th.client(t, th.token)
	honest := record(t, th, func(f compute.Function) []compute.Value {
		x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 3), nil))
		return []compute.Value{must(f.Add(x, x))}
	})
	if err := run(c, honest.Bytes, remote.Input{Value: f32(1, 2, 3)}); err != nil {
		t.Fatalf("the honest program: %v", err)
	}

	wantErr(t, "garbage", run(c, []byte("rm -rf /")), "not a gonnsight program")
	for cut := len(honest.Bytes) - 1; cut > 20; cut -= 3 {
		err := run(c, honest.Bytes[:cut], remote.Input{Value: f32(1, 2, 3)})
		if err == nil {
			t.Errorf("a program cut at byte %d was accepted", cut)
		}
	}
	// Flip every byte after the header, one at a time: errors, never a crash.
	for i := 20; i < len(honest.Bytes); i++ {
		p := append([]byte(nil), honest.Bytes...)
		p[i] ^= 0xff
		run(c, p, remote.Input{Value: f32(1, 2, 3)})
	}
	_, err := c.Run(&remote.RunRequest{Hash: [32]byte{1}, Program: honest.Bytes, Inputs: []remote.Input{{Value: f32(1, 2, 3)}}})
	wantErr(t, "wrong hash", err, "does not match its hash")
	_, err = c.Run(&remote.RunRequest{Hash: [32]byte{2}})
	var he *remote.HostError
	if !errors.As(err, &he) || he.Status != remote.StatusUnknownProgram {
		t.Errorf("an unknown hash without a program: %v", err)
	}
	wantErr(t, "wrong input shape", run(c, honest.Bytes, remote.Input{Value: f32(1, 2)}), "shape")
	wantErr(t, "input data short of its shape", run(c, honest.Bytes, remote.Input{Value: &remote.Tensor{DType: int(dtypes.Float32), Dims: []int{3}, Data: []byte{1}}}), "bytes of data")
	wantErr(t, "no inputs", run(c, honest.Bytes), "takes 1 inputs")

	huge := record(t, th, func(f compute.Function) []compute.Value {
		x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 1), nil))
		return []compute.Value{must(f.BroadcastInDim(x, shapes.Make(dtypes.Float32, 1<<16, 1<<16), []int{0}))}
	})
	wantErr(t, "a 16 GiB broadcast", run(c, huge.Bytes, remote.Input{Value: f32(1)}), "limit")

	denied := record(t, th, func(f compute.Function) []compute.Value {
		x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 3), nil))
		return []compute.Value{must(f.Cos(x))}
	})
	wantErr(t, "a denied op", run(c, denied.Bytes, remote.Input{Value: f32(1, 2, 3)}), "Cos is not allowed")

	// A value used before it exists: patch the Add's operand ids to a large number.
	forward := record(t, th, func(f compute.Function) []compute.Value {
		x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 3), nil))
		return []compute.Value{must(f.Neg(x))}
	})
	p := append([]byte(nil), forward.Bytes...)
	// The Neg op's operand is the byte before Return's fid/opcode/count/value; find and change it.
	idx := strings.LastIndex(string(p[:len(p)-4]), "\x01")
	p[idx] = 0x7f
	if err := run(c, p, remote.Input{Value: f32(1, 2, 3)}); err == nil {
		t.Error("a program using an undefined value was accepted")
	}

	wantErr(t, "a weight of no model", run(c, honest.Bytes, remote.Input{Weight: &remote.WeightRef{Model: "nope", Name: "w"}}), "no model")
	stillServes(t, th)
	if _, err := c.Open(gpt2.TinyID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "a weight with another checksum", run(c, honest.Bytes, remote.Input{Weight: &remote.WeightRef{Model: gpt2.TinyID, Name: "transformer.ln_f.bias", Sum: 1}}), "checksum")
	if th.Stats().Errors == 0 {
		t.Error("the host counted no errors")
	}
}

func TestRunTimeLimit(t *testing.T) {
	th := startHost(t, host.Config{RunTimeout: time.Millisecond, MaxConcurrent: 1})
	c := th.client(t, th.token)
	slow := record(t, th, func(f compute.Function) []compute.Value {
		x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 512, 512), nil))
		y := x
		for i := 0; i < 20; i++ {
			y = must(f.DotGeneral(y, []int{1}, nil, x, []int{0}, nil, compute.DotGeneralConfig{}))
		}
		return []compute.Value{y}
	})
	in := &remote.Tensor{DType: int(dtypes.Float32), Dims: []int{512, 512}, Data: make([]byte, 512*512*4)}
	wantErr(t, "a run past the time limit", run(c, slow.Bytes, remote.Input{Value: in}), "longer than the host's limit")
}

func TestModelPathsConfined(t *testing.T) {
	allowed := t.TempDir()
	th := startHost(t, host.Config{ModelDirs: []string{allowed}})
	c := th.client(t, th.token)
	secret := t.TempDir()
	os.WriteFile(filepath.Join(secret, "config.json"), []byte(`{}`), 0o600)
	for _, src := range []string{secret, "/etc", "../../etc/passwd", "~/.ssh", allowed + "/../" + filepath.Base(secret), "./x"} {
		_, err := c.Open(src)
		var he *remote.HostError
		if !errors.As(err, &he) || he.Status != http.StatusForbidden {
			t.Errorf("open %q: %v, want 403", src, err)
		}
	}
	// A model inside the model directories loads.
	dir := filepath.Join(allowed, "tiny")
	if err := gpt2.MakeTiny(dir, gpt2.TinyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(dir); err != nil {
		t.Errorf("a model under --models: %v", err)
	}
	// A symlink inside the model directories pointing out of them is outside.
	link := filepath.Join(allowed, "link")
	os.Symlink(secret, link)
	if _, err := c.Open(link); err == nil {
		t.Error("a symlink out of the model directories was followed")
	}
}

// TestConcurrentClients: several clients trace at once, each with its own intervention, and
// one sends garbage meanwhile; every honest result matches its in-process twin bit for bit.
func TestConcurrentClients(t *testing.T) {
	th := startHost(t, host.Config{MaxConcurrent: 2})
	local := nnsight.LanguageModel(gpt2.TinyID, nnsight.WithBackend("go"))
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m := nnsight.LanguageModel(gpt2.TinyID, nnsight.WithEngine(th.engine(t)))
			fn := func(tr *nnsight.Tracer) {
				tr.Module(fmt.Sprintf("transformer.h.%d.mlp", i%2)).Output().Set(func(x *g.Node) *g.Node { return g.MulScalar(x, float64(i)) })
				tr.Module("transformer.h.1").Output().Save("h1")
			}
			for k := 0; k < 3; k++ {
				got, err := m.Trace(fmt.Sprintf("client %d asks %d", i, k), fn)
				if err != nil {
					errs <- err
					return
				}
				want, err := local.Trace(fmt.Sprintf("client %d asks %d", i, k), fn)
				if err != nil {
					errs <- err
					return
				}
				if !equalBits(got.Get("h1"), want.Get("h1")) {
					errs <- fmt.Errorf("client %d, trace %d: h1 differs from in-process", i, k)
				}
			}
		}(i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := th.client(t, th.token)
		for k := 0; k < 20; k++ {
			if run(c, []byte("gonnsight-program-1\x00garbage")) == nil {
				errs <- errors.New("garbage accepted")
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestOutputsNeverAliasWeights: a program that returns a resident weight unchanged, or a
// value it was given, gets copies; releasing them leaves the host's weights intact.
func TestOutputsNeverAliasWeights(t *testing.T) {
	th := startHost(t, host.Config{InlineBytes: 16})
	c := th.client(t, th.token)
	open, err := c.Open(gpt2.TinyID)
	if err != nil {
		t.Fatal(err)
	}
	var p remote.ParamInfo
	for _, q := range open.Params {
		if q.Name == "transformer.h.0.mlp.c_fc.weight" {
			p = q
		}
	}
	prog := record(t, th, func(f compute.Function) []compute.Value {
		w := must(f.Parameter("w", shapes.Make(dtypes.DType(p.DType), p.Dims...), nil))
		return []compute.Value{w, w}
	})
	ref := remote.WeightRef{Model: open.Model, Name: p.Name, Sum: p.Sum}
	var session [16]byte
	session[0] = 7
	for i := 0; i < 3; i++ {
		reply, err := c.Run(&remote.RunRequest{Hash: sha256.Sum256(prog.Bytes), Program: prog.Bytes, Session: session,
			Inputs: []remote.Input{{Weight: &ref}}})
		if err != nil {
			t.Fatal(err)
		}
		var rel []uint64
		for _, o := range reply.Outputs {
			if o.Resident == 0 {
				t.Fatalf("a %v output was not kept resident with InlineBytes 16", o.Dims)
			}
			rel = append(rel, o.Resident)
		}
		// Release them with the next request: the host finalizes what it kept.
		if _, err := c.Run(&remote.RunRequest{Hash: sha256.Sum256(prog.Bytes), Session: session, Release: rel,
			Inputs: []remote.Input{{Weight: &ref}}}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Weight(ref)
	if err != nil {
		t.Fatal(err)
	}
	local := nnsight.LanguageModel(gpt2.TinyID, nnsight.WithBackend("go"))
	if !equalBytes(w.Data, bitsOf(t, local.Weights()[p.Name])) {
		t.Error("the host's weight changed after programs returned it and released the outputs")
	}
	stillServes(t, th)
}

// TestResidentValuesArePerSession: a value one client left on the host cannot be read or
// used by another session, and released values are gone.
func TestResidentValuesArePerSession(t *testing.T) {
	th := startHost(t, host.Config{InlineBytes: 8})
	c := th.client(t, th.token)
	prog := record(t, th, func(f compute.Function) []compute.Value {
		x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 4), nil))
		return []compute.Value{must(f.Add(x, x))}
	})
	mine, other := [16]byte{1}, [16]byte{2}
	reply, err := c.Run(&remote.RunRequest{Hash: sha256.Sum256(prog.Bytes), Program: prog.Bytes, Session: mine,
		Inputs: []remote.Input{{Value: f32(1, 2, 3, 4)}}})
	if err != nil {
		t.Fatal(err)
	}
	id := reply.Outputs[0].Resident
	if id == 0 {
		t.Fatal("the output was not kept")
	}
	_, err = c.Run(&remote.RunRequest{Hash: sha256.Sum256(prog.Bytes), Session: other, Inputs: []remote.Input{{Resident: id}}})
	wantErr(t, "another session's value as input", err, "no values")
	// Used by its own session, it is the doubled input; doubled again here.
	reply, err = c.Run(&remote.RunRequest{Hash: sha256.Sum256(prog.Bytes), Session: mine, Inputs: []remote.Input{{Resident: id}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(&remote.RunRequest{Hash: sha256.Sum256(prog.Bytes), Session: mine, Release: []uint64{id, reply.Outputs[0].Resident},
		Inputs: []remote.Input{{Resident: id}}})
	wantErr(t, "a released value", err, "not held")
	if s := th.Stats(); s.ResidentBytes != 0 {
		t.Errorf("the host still holds %d bytes after the release", s.ResidentBytes)
	}
}

// TestPrivateHostReadsAnyDirectory: the kernel's private host (AnyModelDir) opens a model
// directory anywhere; a shared one refuses it (TestModelPathsConfined).
func TestPrivateHostReadsAnyDirectory(t *testing.T) {
	th := startHost(t, host.Config{AnyModelDir: true})
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := gpt2.MakeTiny(dir, gpt2.TinyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := th.client(t, th.token).Open(dir); err != nil {
		t.Errorf("a private host refused %s: %v", dir, err)
	}
}

// TestRequestSizeLimit: a body over MaxRequestBytes is refused while it is read.
func TestRequestSizeLimit(t *testing.T) {
	th := startHost(t, host.Config{MaxRequestBytes: 4096})
	c := th.client(t, th.token)
	big := &remote.Tensor{DType: int(dtypes.Float32), Dims: []int{4096}, Data: make([]byte, 4*4096)}
	err := run(c, []byte("gonnsight-program-1"), remote.Input{Value: big})
	wantErr(t, "a 16 KiB body to a host that takes 4 KiB", err, "too large")
	if _, err := c.Hello(); err != nil {
		t.Errorf("the host stopped answering: %v", err)
	}
}

// TestProgramCacheEviction: with room for one program, clients alternating two programs
// concurrently keep getting right answers (an evicted program is finalized only once no run
// uses it).
func TestProgramCacheEviction(t *testing.T) {
	th := startHost(t, host.Config{MaxPrograms: 1, MaxConcurrent: 2})
	progs := []*remote.Program{
		record(t, th, func(f compute.Function) []compute.Value {
			x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 3), nil))
			return []compute.Value{must(f.Add(x, x))}
		}),
		record(t, th, func(f compute.Function) []compute.Value {
			x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 3), nil))
			return []compute.Value{must(f.Mul(x, x))}
		}),
	}
	want := []string{"[2 4 6]", "[1 4 9]"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := th.client(t, th.token)
			for k := 0; k < 10; k++ {
				i := (w + k) % 2
				reply, err := c.Run(&remote.RunRequest{Hash: sha256.Sum256(progs[i].Bytes), Program: progs[i].Bytes,
					Inputs: []remote.Input{{Value: f32(1, 2, 3)}}})
				if err != nil {
					errs <- err
					return
				}
				got := dtypes.UnsafeSliceFromBytes[float32](unsafe.Pointer(&reply.Outputs[0].Data[0]), 3)
				if fmt.Sprint(got) != want[i] {
					errs <- fmt.Errorf("program %d gave %v, want %s", i, got, want[i])
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := th.Stats(); s.Programs != 1 || s.Compiles < 2 {
		t.Errorf("programs %d, compiles %d", s.Programs, s.Compiles)
	}
}

// TestUsersAreSeparate: with one token per user, users see neither each other's kept values
// nor each other's resident values, even with the same session id; /healthz needs no token
// and says nothing; short tokens are refused.
func TestUsersAreSeparate(t *testing.T) {
	th := startHost(t, host.Config{Token: "# users\nada 0123456789abcdef0123\nbob fedcba9876543210fedc\n", InlineBytes: 8})
	th.token = "0123456789abcdef0123" // ada's, for record
	ada, bob := th.client(t, "0123456789abcdef0123"), th.client(t, "fedcba9876543210fedc")
	prog := record(t, th, func(f compute.Function) []compute.Value {
		x := must(f.Parameter("x", shapes.Make(dtypes.Float32, 4), nil))
		return []compute.Value{must(f.Add(x, x))}
	})
	sid := [16]byte{9}
	reply, err := ada.Run(&remote.RunRequest{Hash: sha256.Sum256(prog.Bytes), Program: prog.Bytes, Session: sid,
		Inputs: []remote.Input{{Value: f32(1, 2, 3, 4)}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.Run(&remote.RunRequest{Hash: sha256.Sum256(prog.Bytes), Session: sid, Inputs: []remote.Input{{Resident: reply.Outputs[0].Resident}}})
	wantErr(t, "another user's resident value, same session id", err, "no values")

	adaB, err := remote.Dial(ada)
	if err != nil {
		t.Fatal(err)
	}
	bobB, err := remote.Dial(bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := adaB.Keep("secret", tensors.FromValue([]float32{4, 2})); err != nil {
		t.Fatal(err)
	}
	if _, err := bobB.Kept("secret"); err == nil {
		t.Error("bob read ada's kept value")
	}
	if names, _ := bobB.KeptNames(); len(names) != 0 {
		t.Errorf("bob sees kept names %v", names)
	}
	if names, _ := adaB.KeptNames(); fmt.Sprint(names) != "[secret]" {
		t.Errorf("ada sees kept names %v", names)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", strings.TrimPrefix(th.addr, "unix:"))
	}}}
	resp, err := hc.Get("http://host/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz without a token: %d %q", resp.StatusCode, body)
	}
	if _, err := host.New(host.Config{Backend: "go", Token: "short"}); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a 5-character token: %v", err)
	}
}
