package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/edit"
	"github.com/gonnsight/gonnsight/internal/golden"
	"github.com/gonnsight/gonnsight/internal/hubtest"
	"github.com/gonnsight/gonnsight/nnsight"
	"github.com/gonnsight/gonnsight/safetensors"
	"github.com/gonnsight/gonnsight/version"
)

// bin is the gonnsight binary built once for all tests; work holds its home and caches.
var bin, work string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gonnsight-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	work = dir
	bin = filepath.Join(dir, "gonnsight")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gonnsight")
	build.Dir = golden.Root()
	build.Env = append(os.Environ(), "GOEXPERIMENT=simd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building gonnsight: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

type result struct {
	stdout, stderr string
	code           int
}

// gns runs the binary with a clean environment: the default model generated under a
// private GONNSIGHT_HOME, an empty Hugging Face cache and no network (HF_HUB_OFFLINE=1).
// env entries override those.
func gns(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HF_") && !strings.HasPrefix(kv, "HUGGING") && !strings.HasPrefix(kv, "GONNSIGHT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GONNSIGHT_HOME="+filepath.Join(work, "home"), "HF_HOME="+filepath.Join(work, "hf"),
		"HF_HUB_CACHE="+filepath.Join(work, "hf", "empty-hub"), "HF_HUB_OFFLINE=1", "HF_HUB_DISABLE_PROGRESS_BARS=1")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running gonnsight %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(res.stderr, "goroutine ") || strings.Contains(res.stderr, "panic:") {
		t.Errorf("gonnsight %s printed a panic:\n%s", strings.Join(args, " "), res.stderr)
	}
	return res
}

// ok runs a command that must succeed and report its backend.
func ok(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := gns(t, env, args...)
	if r.code != 0 {
		t.Fatalf("gonnsight %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "backend: ") {
		t.Errorf("gonnsight %s did not report its backend on stderr:\n%s", args[0], r.stderr)
	}
	return r.stdout
}

func fixtureDir(name string) string { return filepath.Join(golden.Root(), "testdata", "gpt2", name) }

func idList(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

type logitsJSON struct {
	IDs        []int     `json:"ids"`
	Backend    string    `json:"backend"`
	LastLogits []float32 `json:"last_logits"`
	Argmax     []int     `json:"argmax"`
	Top        []struct {
		ID    int     `json:"id"`
		Token string  `json:"token"`
		Logit float32 `json:"logit"`
	} `json:"top"`
}

func parseLogits(t *testing.T, out string) logitsJSON {
	t.Helper()
	var l logitsJSON
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("logits output is not JSON: %v\n%.300s", err, out)
	}
	return l
}

// checkLogits compares logits output against the golden lm_head of a prompt.
func checkLogits(t *testing.T, fx *golden.Fixture, prompt string, l logitsJSON) {
	t.Helper()
	ids := fx.Ints(t, prompt)
	want, shape := fx.Tensor(t, prompt+"/lm_head")
	seq, vocab := shape[1], shape[2]
	if !slices.Equal(l.IDs, ids) {
		t.Errorf("ids %v, want %v", l.IDs, ids)
	}
	fx.CompareSlice(t, prompt+" last_logits", l.LastLogits, want[(seq-1)*vocab:], 1e-4)
	wantArgmax := make([]int, seq)
	for p := range seq {
		row := want[p*vocab : (p+1)*vocab]
		for i, v := range row {
			if v > row[wantArgmax[p]] {
				wantArgmax[p] = i
			}
		}
	}
	if !slices.Equal(l.Argmax, wantArgmax) {
		t.Errorf("%s argmax %v, reference %v", prompt, l.Argmax, wantArgmax)
	}
	if len(l.Top) != 5 || l.Top[0].ID != wantArgmax[seq-1] || l.Top[0].Logit != l.LastLogits[l.Top[0].ID] {
		t.Errorf("top %+v: want 5 entries led by %d", l.Top, wantArgmax[seq-1])
	}
	if l.Backend == "" {
		t.Error("no backend in the JSON")
	}
}

func TestLogitsMatchReference(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := golden.Open(t, name)
			for _, prompt := range []string{"p0", "p1"} {
				out := ok(t, nil, "logits", "--model", fixtureDir(name), "--ids", idList(fx.Ints(t, prompt)))
				checkLogits(t, fx, prompt, parseLogits(t, out))
			}
		})
	}
}

func TestTraceMatchesReference(t *testing.T) {
	for _, name := range golden.Models {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := golden.Open(t, name)
			ids := idList(fx.Ints(t, "p0"))
			file := filepath.Join(t.TempDir(), "acts.safetensors")
			out := ok(t, nil, "trace", "--model", fixtureDir(name), "--ids", ids,
				"--save", "transformer.h.1.attn.query", "--save", "transformer.h.0.mlp", "--save", "transformer.h.1.input",
				"--out", file)
			f, err := safetensors.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for save, key := range map[string]string{
				"transformer.h.1.attn.query": "p0/transformer.h.1.attn.query",
				"transformer.h.0.mlp":        "p0/transformer.h.0.mlp",
				"transformer.h.1.input":      "p0/input/transformer.h.1",
			} {
				info, found := f.Info(save)
				if !found {
					t.Errorf("%s has no tensor %q; it has %v", file, save, f.Names())
					continue
				}
				data, err := f.Float32(save)
				if err != nil {
					t.Fatal(err)
				}
				fx.Compare(t, key, data, info.Shape, 1e-4)
				if !strings.Contains(out, save) {
					t.Errorf("summary does not list %s:\n%s", save, out)
				}
			}
			meta := f.Metadata()
			if meta["ids"] != ids || meta["model"] != fixtureDir(name) || meta["backend"] == "" {
				t.Errorf("metadata %v", meta)
			}
		})
	}
}

// TransformerLens hook names work in --save, in TransformerLens's layouts.
func TestTraceTransformerLensNames(t *testing.T) {
	fx := golden.Open(t, "tiny-b")
	file := filepath.Join(t.TempDir(), "acts.safetensors")
	hooks := []string{"blocks.1.hook_resid_pre", "blocks.-1.attn.hook_z", "blocks.2.attn.hook_attn_scores", "blocks.0.mlp.hook_post"}
	args := []string{"trace", "--model", fixtureDir("tiny-b"), "--ids", idList(fx.Ints(t, "p0")), "--out", file}
	for _, h := range hooks {
		args = append(args, "--save", h)
	}
	ok(t, nil, args...)
	f, err := safetensors.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, h := range hooks {
		info, found := f.Info(h)
		if !found {
			t.Fatalf("%s has no tensor %q; it has %v", file, h, f.Names())
		}
		data, err := f.Float32(h)
		if err != nil {
			t.Fatal(err)
		}
		want, shape := fx.Tensor(t, "tl/p0/"+strings.Replace(h, "-1", "2", 1))
		if fmt.Sprint(info.Shape) != fmt.Sprint(shape) {
			t.Errorf("%s: shape %v, TransformerLens's %v", h, info.Shape, shape)
			continue
		}
		for i := range want {
			if !(data[i] == want[i] || math.Abs(float64(data[i]-want[i])) <= 1e-4) {
				t.Errorf("%s[%d] = %v, reference %v", h, i, data[i], want[i])
				break
			}
		}
	}
}

// Negative indices work in --save and --module; an index out of range names the valid range.
func TestNegativeIndexFlags(t *testing.T) {
	t.Parallel()
	fx := golden.Open(t, "tiny-a") // 2 layers: -1 is block 1
	ids := idList(fx.Ints(t, "p0"))
	file := filepath.Join(t.TempDir(), "acts.safetensors")
	ok(t, nil, "trace", "--model", fixtureDir("tiny-a"), "--ids", ids,
		"--save", "transformer.h[-1].mlp", "--save", "transformer.h.-1.input", "--save", "transformer.h.-2.attn.query", "--out", file)
	f, err := safetensors.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for save, key := range map[string]string{
		"transformer.h[-1].mlp":       "p0/transformer.h.1.mlp",
		"transformer.h.-1.input":      "p0/input/transformer.h.1",
		"transformer.h.-2.attn.query": "p0/transformer.h.0.attn.query",
	} {
		info, found := f.Info(save)
		if !found {
			t.Errorf("no tensor %q; saved %v", save, f.Names())
			continue
		}
		data, err := f.Float32(save)
		if err != nil {
			t.Fatal(err)
		}
		fx.Compare(t, key, data, info.Shape, 1e-4)
	}
	last := ok(t, nil, "graph", "--model", fixtureDir("tiny-a"), "--module", "transformer.h[-1].mlp")
	one := ok(t, nil, "graph", "--model", fixtureDir("tiny-a"), "--module", "transformer.h.1.mlp")
	if last != one || !strings.Contains(last, "c_fc.weight") {
		t.Errorf("graph of h[-1].mlp:\n%s\ngraph of h.1.mlp:\n%s", last, one)
	}
	for _, args := range [][]string{
		{"trace", "--ids", ids, "--save", "transformer.h[-3].mlp", "--out", file},
		{"graph", "--module", "transformer.h.-3"},
	} {
		r := gns(t, nil, append(args, "--model", fixtureDir("tiny-a"))...)
		if r.code != 1 || !strings.Contains(r.stderr, "-3") || !strings.Contains(r.stderr, "-2..-1") {
			t.Errorf("gonnsight %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

type generationJSON struct {
	IDs    []int `json:"ids"`
	NewIDs []int `json:"new_ids"`
}

func TestGenerateMatchesReference(t *testing.T) {
	for _, name := range golden.Models {
		for _, cache := range []string{"cache", "no-cache"} {
			t.Run(name+"/"+cache, func(t *testing.T) {
				t.Parallel()
				fx := golden.Open(t, name)
				args := []string{"generate", "--model", fixtureDir(name), "--ids", idList(fx.Ints(t, "p0")),
					"--max-new-tokens", "10", "--json"}
				if cache == "no-cache" {
					args = append(args, "--no-cache")
				}
				var g generationJSON
				if err := json.Unmarshal([]byte(ok(t, nil, args...)), &g); err != nil {
					t.Fatal(err)
				}
				if want := fx.Ints(t, "generate", "greedy", "tokens"); !slices.Equal(g.IDs, want) {
					t.Errorf("ids %v, reference %v", g.IDs, want)
				}
				if want := fx.Ints(t, "generate", "greedy", "new_tokens"); !slices.Equal(g.NewIDs, want) {
					t.Errorf("new_ids %v, reference %v", g.NewIDs, want)
				}
			})
		}
	}
}

func TestTokenizeMatchesReference(t *testing.T) {
	const text = "The Eiffel Tower is in the city of"
	data, err := os.ReadFile(filepath.Join(golden.Root(), "tokenizer", "testdata", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, c := range cases {
		if c.Text == text {
			want = c.IDs
		}
	}
	if want == nil {
		t.Fatalf("tokenizer/testdata/golden.json has no entry for %q", text)
	}
	// The generated tiny GPT-2 carries GPT-2's tokenizer (the trained default has its own).
	var got struct {
		IDs    []int    `json:"ids"`
		Tokens []string `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(ok(t, nil, "tokenize", "--model", "gonnsight/tiny-gpt2", "--text", text)), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IDs, want) {
		t.Errorf("ids %v, reference %v", got.IDs, want)
	}
	if strings.Join(got.Tokens, "") != text || len(got.Tokens) != len(got.IDs) {
		t.Errorf("tokens %q do not spell %q", got.Tokens, text)
	}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

func TestMakeTiny(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sums := map[string]string{}
	for _, run := range []struct{ dir, seed string }{{"a", "7"}, {"b", "7"}, {"c", "8"}} {
		dir := filepath.Join(root, run.dir)
		r := gns(t, nil, "make-tiny", "--out", dir, "--layers", "2", "--heads", "2", "--embd", "32", "--positions", "64", "--seed", run.seed)
		if r.code != 0 {
			t.Fatalf("make-tiny: exit %d\n%s", r.code, r.stderr)
		}
		sums[run.dir] = fileSHA(t, filepath.Join(dir, "model.safetensors"))
	}
	if sums["a"] != sums["b"] {
		t.Errorf("make-tiny with the same seed wrote different weights")
	}
	if sums["a"] == sums["c"] {
		t.Errorf("make-tiny with seeds 7 and 8 wrote the same weights")
	}
	l := parseLogits(t, ok(t, nil, "logits", "--model", filepath.Join(root, "a"), "--text", "Hello"))
	if !slices.Equal(l.IDs, []int{15496}) || len(l.LastLogits) != 50257 || len(l.Argmax) != 1 {
		t.Errorf("logits on the tiny model: ids %v, %d logits, argmax %v", l.IDs, len(l.LastLogits), l.Argmax)
	}
	for _, v := range l.LastLogits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite logits")
		}
	}
	r := gns(t, nil, "make-tiny", "--out", filepath.Join(root, "d"), "--heads", "3")
	if r.code == 0 || !strings.Contains(r.stderr, "n_head") {
		t.Errorf("make-tiny --heads 3 (n_embd 64): exit %d, stderr %q; want an error naming n_head", r.code, r.stderr)
	}
}

func TestErrors(t *testing.T) {
	tinyA := fixtureDir("tiny-a")
	corrupt := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(tinyA, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "model.safetensors" {
			data = data[:len(data)/2]
		}
		if err := os.WriteFile(filepath.Join(corrupt, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := make([]int, 40) // tiny-a has n_positions=32
	for i := range long {
		long[i] = i
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"missing dir", nil, []string{"logits", "--model", "/nonexistent", "--ids", "1"}, []string{"/nonexistent"}},
		{"corrupt weights", nil, []string{"logits", "--model", corrupt, "--ids", "1"},
			[]string{filepath.Join(corrupt, "model.safetensors")}},
		{"id out of range", nil, []string{"logits", "--model", tinyA, "--ids", "9999"}, []string{"9999", "vocab_size"}},
		{"prompt too long", nil, []string{"logits", "--model", tinyA, "--ids", idList(long)}, []string{"n_positions"}},
		{"generation too long", nil, []string{"generate", "--model", tinyA, "--ids", "1,2", "--max-new-tokens", "40"},
			[]string{"n_positions"}},
		{"unknown module", nil, []string{"graph", "--model", tinyA, "--module", "transformer.h.9"},
			[]string{"transformer.h.9", "transformer.h.0", "transformer.h.1"}},
		{"unknown saved value", nil, []string{"trace", "--model", tinyA, "--ids", "1", "--save", "transformer.h.1.attn.qurey",
			"--out", filepath.Join(t.TempDir(), "x.safetensors")}, []string{"transformer.h.1.attn.qurey", "query"}},
		{"not cached offline", []string{"HF_HUB_OFFLINE=1", "HF_HUB_CACHE=" + t.TempDir()},
			[]string{"logits", "--model", "test-org/no-such-model", "--ids", "1"}, []string{"test-org/no-such-model", "not in the"}},
		{"no tokenizer", nil, []string{"logits", "--model", tinyA, "--text", "Hello"}, []string{"tokenizer", "--ids"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := gns(t, c.env, c.args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "gonnsight "+c.args[0]+": ") {
				t.Errorf("stderr does not start the error with %q:\n%s", "gonnsight "+c.args[0]+": ", r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error does not mention %q:\n%s", w, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout should be empty on error, got %.200q", r.stdout)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	r := gns(t, nil, "help")
	for _, c := range []string{"tokenize", "logits", "generate", "trace", "graph", "explain", "scan", "make-tiny", "version"} {
		if r.code != 0 || !strings.Contains(r.stdout, "  "+c+" ") {
			t.Errorf("help (exit %d) does not list %s:\n%s", r.code, c, r.stdout)
		}
	}
	r = gns(t, nil, "logits", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "--model") || !strings.Contains(r.stdout, "examples:") {
		t.Errorf("logits -h: exit %d\n%s", r.code, r.stdout)
	}
	r = gns(t, nil, "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, "unknown command") || !strings.Contains(r.stderr, "logits") {
		t.Errorf("unknown command: exit %d\n%s", r.code, r.stderr)
	}
	r = gns(t, nil, "logits", "--model", fixtureDir("tiny-a"))
	if r.code != 2 || !strings.Contains(r.stderr, "--ids") {
		t.Errorf("logits without a prompt: exit %d\n%s", r.code, r.stderr)
	}
	r = gns(t, nil, "version")
	if r.code != 0 || r.stdout != "gonnsight "+version.Version+"\n" {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
}

func TestGraphExplainScan(t *testing.T) {
	t.Parallel()
	tinyA := fixtureDir("tiny-a")
	checks := []struct {
		args []string
		want []string
	}{
		{[]string{"graph", "--module", "transformer.h.0.mlp"}, []string{"opcode", "placeholder", "c_fc.weight", "output"}},
		{[]string{"graph", "--module", "transformer.h[0].attn", "--folded"}, []string{"call_module", "c_attn", "query"}},
		{[]string{"graph", "--module", "transformer.h.0.mlp", "--code"}, []string{"def forward", "return"}},
		{[]string{"graph", "--module", "transformer.h.0.mlp", "--html"}, []string{"<!DOCTYPE html>", "<table", "c_fc.weight"}},
		// Scan names each axis: query is [batch, pos, embd] (before the head split), and
		// attn_weights says which axis is the head.
		{[]string{"scan", "--ids", "1,2,3"}, []string{"transformer.h.1.attn.query", "[1 3 16] (batch, pos, embd)",
			"[1 2 3 3] (batch, head, query_pos, key_pos)", "[1 3 512] (batch, pos, vocab)"}},
	}
	for _, c := range checks {
		out := ok(t, nil, append(c.args, "--model", tinyA)...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("gonnsight %s: output lacks %q:\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}
	// explain counts the ops of the captured forward: as many as the root graph's
	// call_function rows, taken here from the library.
	m := nnsight.LanguageModel(tinyA, nnsight.WithBackend("go"))
	gr, err := m.Graph("")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, node := range gr.Nodes {
		if node.Op == edit.CallFunction {
			n++
		}
	}
	out := ok(t, nil, "explain", "--ids", "1,2,3", "--model", tinyA)
	for _, w := range []string{"Graph Count: 1\n", fmt.Sprintf("Op Count: %d\n", n), fmt.Sprintf("Graph 0: %d ops\n", n)} {
		if n < 100 || !strings.Contains(out, w) {
			t.Errorf("gonnsight explain: output lacks %q (the captured forward has %d ops):\n%s", w, n, out)
		}
	}
}

// TestHubOverHTTP loads a model by hub id from a local hub over real HTTP, then again
// offline with the hub gone, from the cache.
func TestHubOverHTTP(t *testing.T) {
	t.Parallel()
	fx := golden.Open(t, "tiny-a")
	files := map[string][]byte{}
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(fixtureDir("tiny-a"), f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = data
	}
	srv := hubtest.NewServer(t, map[string]map[string][]byte{"test-org/tiny-a": files})
	cache := t.TempDir()
	ids := idList(fx.Ints(t, "p0"))
	online := []string{"HF_ENDPOINT=" + srv.URL, "HF_HUB_CACHE=" + cache, "HF_HUB_OFFLINE=0"}
	checkLogits(t, fx, "p0", parseLogits(t, ok(t, online, "logits", "--model", "test-org/tiny-a", "--ids", ids)))
	if _, err := os.Stat(filepath.Join(cache, "models--test-org--tiny-a")); err != nil {
		t.Errorf("nothing cached: %v", err)
	}
	srv.Close()
	offline := []string{"HF_ENDPOINT=" + srv.URL, "HF_HUB_CACHE=" + cache, "HF_HUB_OFFLINE=1"}
	checkLogits(t, fx, "p0", parseLogits(t, ok(t, offline, "logits", "--model", "test-org/tiny-a", "--ids", ids)))
}
