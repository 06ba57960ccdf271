package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/golden"
	"github.com/gonnsight/gonnsight/internal/kernel"
	"github.com/gonnsight/gonnsight/version"
)

// The notebooks of notebooks/ executed through the real kernel: GoNB with gonnsight's launcher,
// driven by the Go runner (`gonnsight run`) and, for the walkthrough, by Jupyter's own
// `jupyter nbconvert --execute`. The kernelspec is a private "gonnsight" (in a JUPYTER_PATH of
// the test's own) that runs the gonnsight binary built by TestMain on this checkout, with the
// tools (GoNB, goimports, gopls) that `./install.sh` / `gonnsight kernel install` built.

// kernelEnv is the environment shared by the notebook and kernel tests.
type kernelEnv struct {
	jupyterPath string // holds kernels/gonnsight
	home        string // GONNSIGHT_HOME: the installed tools and the default model
	skip        string // why the tests cannot run here
	err         error
}

var (
	kenvOnce sync.Once
	kenv     kernelEnv
)

// needKernel returns the private kernelspec's environment, or skips the test when the kernel's
// tools are not installed.
func needKernel(t *testing.T) *kernelEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs notebook cells through GoNB (seconds per cell): skipped in -short mode")
	}
	kenvOnce.Do(func() {
		home := kernel.DefaultHome()
		for _, tool := range []kernel.Tool{kernel.GoNBTool, kernel.GoImportsTool} {
			if !kernel.ToolInstalled(home, tool) {
				kenv.skip = fmt.Sprintf("the kernel's %s %s is not installed in %s: run ./install.sh (or `gonnsight kernel install`) first",
					tool.Name, tool.Version, kernel.ToolsBinDir(home))
				return
			}
		}
		prefix := filepath.Join(work, "jupyter-prefix")
		root, err := filepath.Abs(golden.Root())
		if err != nil {
			kenv.err = err
			return
		}
		if _, err := kernel.InstallKernelspec(kernel.KernelspecOptions{Name: "gonnsight", Prefix: prefix, Binary: bin,
			ModuleRoot: root, Home: home}); err != nil {
			kenv.err = fmt.Errorf("writing the test's kernelspec: %w", err)
			return
		}
		kenv.jupyterPath = filepath.Join(prefix, "share", "jupyter")
		kenv.home = home
	})
	if kenv.skip != "" {
		t.Skip(kenv.skip)
	}
	if kenv.err != nil {
		t.Fatal(kenv.err)
	}
	return &kenv
}

// environ is the environment of the commands the tests start: the private kernelspec first on
// JUPYTER_PATH, the installed tools and model, no network for models.
func (k *kernelEnv) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "JUPYTER_PATH", kernel.HomeEnv, kernel.SessionDirEnv, kernel.KeepSessionEnv, "HF_HUB_OFFLINE", "GOEXPERIMENT":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "JUPYTER_PATH="+k.jupyterPath, kernel.HomeEnv+"="+k.home, "HF_HUB_OFFLINE=1", "GOEXPERIMENT=simd")
}

var (
	pyOnce    sync.Once
	pyPath    string
	pyMissing string
)

// jupyterPython returns a Python with Jupyter's client, nbclient and nbconvert (Debian's
// /usr/bin/python3 first, as install.sh looks for them), or skips the test.
func jupyterPython(t *testing.T) string {
	t.Helper()
	pyOnce.Do(func() {
		for _, py := range []string{"/usr/bin/python3", "python3"} {
			p, err := exec.LookPath(py)
			if err != nil {
				continue
			}
			if exec.Command(p, "-c", "import jupyter_client, nbclient, nbconvert").Run() == nil {
				pyPath = p
				return
			}
		}
		pyMissing = "no python3 with jupyter_client, nbclient and nbconvert (Debian: apt-get install jupyter-client python3-nbclient jupyter-nbconvert; ./install.sh does it)"
	})
	if pyPath == "" {
		t.Skip(pyMissing)
	}
	return pyPath
}

// notebook is an executed notebook as the tests read it.
type notebook struct {
	Cells []struct {
		CellType string     `json:"cell_type"`
		Source   any        `json:"source"`
		Outputs  []nbOutput `json:"outputs"`
	} `json:"cells"`
	Metadata map[string]any `json:"metadata"`
}

type nbOutput struct {
	OutputType string         `json:"output_type"`
	Name       string         `json:"name"`
	Text       any            `json:"text"`
	Data       map[string]any `json:"data"`
	Ename      string         `json:"ename"`
	Evalue     string         `json:"evalue"`
}

// multiline joins a notebook string field (a string or a list of lines).
func multiline(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var b strings.Builder
		for _, s := range x {
			if str, ok := s.(string); ok {
				b.WriteString(str)
			}
		}
		return b.String()
	}
	return ""
}

// cellOutput is what one code cell produced.
type cellOutput struct {
	source         string
	stdout, stderr string
	plain, html    []string // text/plain and text/html of each display
	svg            []string // image/svg+xml of each display ("" when it has none)
	errors         []string
}

func (c cellOutput) String() string {
	return fmt.Sprintf("source:\n%s\nstdout:\n%s\nstderr:\n%s\ndisplays (text/plain):\n%s\nerrors: %v",
		c.source, c.stdout, c.stderr, strings.Join(c.plain, "\n--\n"), c.errors)
}

func (nb *notebook) codeCells() []cellOutput {
	var out []cellOutput
	for _, c := range nb.Cells {
		if c.CellType != "code" {
			continue
		}
		co := cellOutput{source: multiline(c.Source)}
		for _, o := range c.Outputs {
			switch o.OutputType {
			case "stream":
				if o.Name == "stderr" {
					co.stderr += multiline(o.Text)
				} else {
					co.stdout += multiline(o.Text)
				}
			case "display_data", "execute_result":
				co.plain = append(co.plain, multiline(o.Data["text/plain"]))
				co.html = append(co.html, multiline(o.Data["text/html"]))
				co.svg = append(co.svg, multiline(o.Data["image/svg+xml"]))
			case "error":
				co.errors = append(co.errors, o.Ename+": "+o.Evalue)
			}
		}
		out = append(out, co)
	}
	return out
}

// cell returns the code cell whose source contains marker.
func (nb *notebook) cell(t *testing.T, marker string) cellOutput {
	t.Helper()
	var found []cellOutput
	for _, c := range nb.codeCells() {
		if strings.Contains(c.source, marker) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one code cell containing %q, found %d", marker, len(found))
	}
	return found[0]
}

func readNotebook(t *testing.T, path string) *notebook {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nb notebook
	if err := json.Unmarshal(data, &nb); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &nb
}

// executed is a notebook run through `gonnsight run`.
type executed struct {
	nb     *notebook
	out    string // the executed notebook's path
	stderr string
	took   time.Duration
}

var (
	runsMu sync.Mutex
	runs   = map[string]*executed{}
)

// runNotebook executes notebooks/NAME through `gonnsight run` (once per name and parameters;
// later calls return the same run) and fails the test on any error.
func runNotebook(t *testing.T, k *kernelEnv, name string, params ...string) *executed {
	t.Helper()
	key := name + " " + strings.Join(params, " ")
	runsMu.Lock()
	defer runsMu.Unlock()
	if e, ok := runs[key]; ok {
		return e
	}
	out := filepath.Join(work, "executed", fmt.Sprintf("%d-%s", len(runs), name))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", filepath.Join(golden.Root(), "notebooks", name), "--out", out, "--timeout", "5m"}
	for _, p := range params {
		args = append(args, "-p", p)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = k.environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		msg := fmt.Sprintf("gonnsight %s: %v\nstderr (tail):\n%s", strings.Join(args, " "), err, tail(stderr.String(), 6000))
		if _, statErr := os.Stat(out); statErr == nil {
			for i, c := range readNotebook(t, out).codeCells() {
				if len(c.errors) > 0 || c.stderr != "" {
					msg += fmt.Sprintf("\ncode cell %d:\n%s", i+1, c)
				}
			}
		}
		t.Fatal(msg)
	}
	t.Logf("%s: %v", strings.TrimSpace(key), took.Round(100*time.Millisecond))
	e := &executed{nb: readNotebook(t, out), out: out, stderr: stderr.String(), took: took}
	for i, c := range e.nb.codeCells() {
		if len(c.errors) > 0 {
			t.Fatalf("%s: code cell %d has an error output:\n%s", name, i+1, c)
		}
	}
	runs[key] = e
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// has fails the test unless text matches every regular expression.
func has(t *testing.T, what, text string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(text) {
			t.Errorf("%s: no match for %q in:\n%s", what, p, text)
		}
	}
}

// number returns the float captured by the first group of pattern in text.
func number(t *testing.T, what, text, pattern string) float64 {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: no match for %q in:\n%s", what, pattern, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %q is not a number", what, m[1])
	}
	return v
}

// promptTokens returns the number of GPT-2 tokens of text.
func promptTokens(t *testing.T, text string) int { return promptTokensOf(t, trained, text) }

// promptTokensOf counts text's tokens under a model's tokenizer.
func promptTokensOf(t *testing.T, model, text string) int {
	t.Helper()
	r := gns(t, nil, "tokenize", "--model", model, "--text", text)
	var tok struct {
		IDs []int `json:"ids"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &tok) != nil || len(tok.IDs) == 0 {
		t.Fatalf("tokenize %q: exit %d\n%s%s", text, r.code, r.stdout, r.stderr)
	}
	return len(tok.IDs)
}

// checkRunMetadata checks the research log in metadata.gonnsight.
func checkRunMetadata(t *testing.T, e *executed, model string) map[string]any {
	t.Helper()
	g, ok := e.nb.Metadata["gonnsight"].(map[string]any)
	if !ok {
		t.Fatalf("no metadata.gonnsight in the executed notebook; metadata: %v", e.nb.Metadata)
	}
	if g["version"] != version.Version {
		t.Errorf("metadata.gonnsight.version = %v, want %s", g["version"], version.Version)
	}
	if b, _ := g["backend"].(string); b == "" {
		t.Errorf("metadata.gonnsight.backend is missing: %v", g)
	}
	if g["model"] != model {
		t.Errorf("metadata.gonnsight.model = %v, want %s", g["model"], model)
	}
	if g["kernel"] != "gonnsight" {
		t.Errorf("metadata.gonnsight.kernel = %v", g["kernel"])
	}
	if g["error"] != nil {
		t.Errorf("metadata.gonnsight.error = %v", g["error"])
	}
	cells, _ := g["cells"].([]any)
	if n := len(e.nb.codeCells()); len(cells) != n {
		t.Errorf("metadata.gonnsight.cells has %d entries for %d code cells", len(cells), n)
	}
	for _, c := range cells {
		m, _ := c.(map[string]any)
		if d, _ := m["duration_seconds"].(float64); m["status"] != "ok" || d <= 0 {
			t.Errorf("metadata.gonnsight.cells entry %v: want status ok and a duration", m)
		}
	}
	return g
}

// checkHTML checks that an HTML display renders offline: no scripts or styles from elsewhere.
func checkHTML(t *testing.T, what, html string) {
	t.Helper()
	if strings.TrimSpace(html) == "" {
		t.Errorf("%s: no text/html", what)
	}
	for _, bad := range []string{"<script src", "http://", "https://", "<link "} {
		if strings.Contains(html, bad) {
			t.Errorf("%s: the HTML refers to something outside the notebook (%q)", what, bad)
		}
	}
}

const (
	eiffel = "The Eiffel Tower is in the city of"
	ioi    = "When Mary and John went to the store, John gave a drink to"
	// The tutorials' default: the small GPT-2 trained on the Brown Corpus (models/brown-gpt2).
	trained = "gonnsight/brown-gpt2"
)

// dims are the sizes of a model that the notebooks print.
type dims struct {
	name        string
	embd, vocab int
	// batchIDs: "The capital of France is" and "Hello", left-padded with <|endoftext|>.
	batchIDs string
}

var (
	// trainedDims: 4 layers, 4 heads, n_embd 128, the trained 4096-token vocabulary (ids from
	// `gonnsight tokenize --text ...` on it; <|endoftext|> is 4095).
	trainedDims = dims{name: trained, embd: 128, vocab: 4096,
		batchIDs: `[[474 3176 275 3991 323] [4095 4095 72 608 111]]`}
	// tinyDims: make-tiny's defaults with GPT-2's tokenizer.
	tinyDims = dims{embd: 64, vocab: 50257, batchIDs: `[[464 3139 286 4881 318] [50256 50256 50256 50256 15496]]`}
)

func TestNotebook01EditWalkthrough(t *testing.T) {
	k := needKernel(t)
	e := runNotebook(t, k, "01_edit_walkthrough.ipynb")
	checkWalkthrough(t, e.nb, trained)
	meta := checkRunMetadata(t, e, trained)
	backend := e.nb.cell(t, `fmt.Println("backend:", model.Backend())`)
	if b, _ := meta["backend"].(string); !strings.Contains(backend.stdout, "backend: "+b) {
		t.Errorf("the runner recorded backend %q; the kernel's cells said:\n%s", b, backend.stdout)
	}
}

// checkWalkthrough checks the seed walkthrough's outputs, section by section.
func checkWalkthrough(t *testing.T, nb *notebook, model string) {
	t.Helper()
	// 1. The toy model's tree and its captured graph (inlined children).
	c := nb.cell(t, "gr, err := toy.Graph(\"\")\n")
	has(t, "toy module tree", c.stdout, `\(layer1\): Linear\(in_features=1, out_features=1`, `\(layer2\): WrappedLayer\(`,
		`\(dropout\): Dropout\(p=0.5`)
	if len(c.plain) != 1 {
		t.Fatalf("toy graph: want one display, got:\n%s", c)
	}
	has(t, "toy graph table", c.plain[0],
		`(?m)^placeholder\s+x\s+x\s+\(\)\s+\{\}\s+\[2 1\]$`,
		`(?m)^get_attr\s+layer1_weight\s+layer1\.weight\s+\(\)`,
		`(?m)^get_attr\s+layer1_bias\s+layer1\.bias\s`,
		`(?m)^get_attr\s+layer2_layer_weight\s+layer2\.layer\.weight\s`,
		`(?m)^call_function\s+dot_general\s+DotGeneral\s+\(x, layer1_weight\)`,
		`(?m)^call_function\s+mul\s+Mul\s+\(add_1, 100\)\s+\{\}\s+\[2 1\]$`,
		`(?m)^call_module\s+dropout\s+dropout\s+\(mul,\)`,
		`(?m)^call_function\s+getitem\s+Slice\s+\(mul,\)`,
		`(?m)^call_function\s+getitem_1\s+Slice\s+\(mul,\)`,
		`(?m)^output\s+output\s+output\s+\(getitem, getitem_1\)`)
	toyOps := len(regexp.MustCompile(`(?m)^call_function\s`).FindAllString(c.plain[0], -1))
	checkHTML(t, "toy graph", c.html[0])
	has(t, "toy graph HTML", c.html[0], `<table class="gns-graph"`, `<tr class="gns-op-placeholder"`, `<tr class="gns-op-get_attr"`,
		`<tr class="gns-op-call_module"`, `<tr class="gns-op-output"`, `>layer1_weight<`, `>\(add_1, 100\)<`)

	// Folded: one call_module row per child.
	c = nb.cell(t, "edit.Folded()")
	if len(c.plain) != 1 {
		t.Fatalf("folded graph: want one display, got:\n%s", c)
	}
	has(t, "folded graph", c.plain[0], `(?m)^call_module\s+layer1\s+layer1\s+\(x,\)`, `(?m)^call_module\s+layer2\s+layer2\s+\(layer1,\)`,
		`(?m)^call_module\s+dropout\s+dropout\s+\(layer2,\)`, `(?m)^output\s+output\s+output\s+\(getitem, getitem_1\)`)
	if strings.Contains(c.plain[0], "get_attr") {
		t.Errorf("the folded graph should not show the children's parameters:\n%s", c.plain[0])
	}

	// 2. Explain.
	c = nb.cell(t, "edit.Explain(")
	// The op count is the inlined graph's call_function rows; M makes five module calls.
	has(t, "explain", c.stdout, `(?m)^Graph Count: 1$`, `(?m)^Graph Break Count: 0$`,
		fmt.Sprintf(`(?m)^Op Count: %d$`, toyOps), `(?m)^Module Calls: 5$`)

	// 3. The value wrapper.
	c = nb.cell(t, "toy2.LoadEdits(valueWrapper)")
	if len(c.plain) != 1 {
		t.Fatalf("toy2 graph: want one display, got:\n%s", c)
	}
	has(t, "toy2 graph", c.plain[0], `(?m)^call_function\s+value\s+Slice\s+\(x,\)`, `(?m)^call_function\s+mul\s+Mul\s`)
	has(t, "toy2 with the edit", c.stdout, `\(value_wrapper\): \[edit\] WrapperModule\(\)`)
	c = nb.cell(t, `Save("value_wrapper.input")`)
	has(t, "value wrapper trace", c.stdout, `(?m)^value_wrapper input: float32\[2 1\]\n\[\[1\.0000\],\n \[4\.0000\]\]$`,
		`(?m)^model output \(unchanged by the identity wrapper\): float32\[2 3\]\n\[\[ 1\.0000,  2\.0000,  3\.0000\],\n \[16\.0000, 20\.0000, 24\.0000\]\]$`)

	// 4. GPT-2: baseline, edits loaded in one cell and used in the next, cleared.
	c = nb.cell(t, `nnsight.Keep("baseline_logits"`)
	has(t, "baseline", c.stdout, `(?m)^model: `+regexp.QuoteMeta(model)+`$`, `(?m)^backend: \S`)
	if len(c.plain) != 1 || !strings.Contains(c.plain[0], "rank") {
		t.Errorf("baseline: want the top-5 table:\n%s", c)
	}
	c = nb.cell(t, "model.LoadEdits(queryWrapper, valueEdit)")
	has(t, "GPT-2 with edits", c.stdout, `\(query_wrapper\): \[edit\] WrapperModule\(\)`, `\(value_edit\): \[edit\] EditModule\(scale=1000\)`)
	c = nb.cell(t, `fmt.Println("loaded edits:", model.Edits())`)
	has(t, "later cell", c.stdout,
		`(?m)^loaded edits: \[.*query_wrapper.*value_edit.*\]$`,
		fmt.Sprintf(`(?m)^query_wrapper output shape \[batch pos embd\]: \[1 %d 128\]$`, promptTokens(t, eiffel)))
	if d := number(t, "logit change", c.stdout, `max \|logit change\| with value x 1000: (\S+)`); !(d > 0) {
		t.Errorf("the x1000 edit did not change the logits: %v", d)
	}
	c = nb.cell(t, "model.ClearEdits()\n")
	has(t, "after ClearEdits", c.stdout, `(?m)^after ClearEdits, max \|logit change\|: 0$`)

	// 5. print_gm of c_proj.
	c = nb.cell(t, `model.Graph("transformer.h.3.mlp.c_proj")`)
	if len(c.plain) != 1 {
		t.Fatalf("c_proj graph: want one display, got:\n%s", c)
	}
	has(t, "c_proj graph", c.plain[0], `(?m)^placeholder\s+x\s+x\s`, `(?m)^get_attr\s+weight\s+weight\s+\(\)\s+\{\}\s+\[512 128\]$`,
		`(?m)^get_attr\s+bias\s+bias\s+\(\)\s+\{\}\s+\[128\]$`, `(?m)^call_function\s+dot_general\s+DotGeneral\s`, `(?m)^output\s+output\s+output\s`)
	checkHTML(t, "c_proj graph", c.html[0])
	has(t, "c_proj code", c.stdout, `(?m)^# transformer\.h\.3\.mlp\.c_proj \(Conv1D\)\ndef forward\(self, x\):  # x: \[1 \d+ \d+\]$`, `(?m)^    return \(\w+,\)$`, `weight = self\.weight`)
}

func TestNotebook02TraceAndSave(t *testing.T) {
	k := needKernel(t)
	e := runNotebook(t, k, "02_trace_and_save.ipynb")
	checkTraceAndSave(t, e.nb, trainedDims)
	checkRunMetadata(t, e, trained)
}

func checkTraceAndSave(t *testing.T, nb *notebook, d dims) (ablation float64) {
	t.Helper()
	model := d.name
	n := promptTokensOf(t, d.name, eiffel)
	c := nb.cell(t, `Save("mlp1")`)
	has(t, "saving", c.stdout, `(?m)^model: `+regexp.QuoteMeta(model)+` \| backend: \S`,
		fmt.Sprintf(`(?m)^logits\s+\[1 %d %d\] \[batch pos vocab\]$`, n, d.vocab), fmt.Sprintf(`(?m)^mlp1\s+\[1 %d %d\] \[batch pos embd\]$`, n, d.embd),
		fmt.Sprintf(`(?m)^weights1\s+\[1 4 %d %d\] \[batch head query_pos key_pos\]$`, n, n), fmt.Sprintf(`(?m)^hidden\s+\[1 %d %d\] \[batch pos embd\]$`, n, d.embd))
	c = nb.cell(t, "ablated, err :=")
	ablation = number(t, "setting", c.stdout, `max \|logit change\| after the ablations: (\S+)`)
	if !(ablation > 0) {
		t.Errorf("the ablations did not change the logits: %v", ablation)
	}
	c = nb.cell(t, "t.Invoke(\"Hello\"")
	// "The capital of France is" and "Hello", the shorter left-padded with <|endoftext|>.
	has(t, "invokes", c.stdout, `(?m)^batch ids \(left-padded\): `+regexp.QuoteMeta(d.batchIDs)+`$`,
		`(?m)^greedy next tokens: ".+", ".+"$`)
	if d := number(t, "invokes", c.stdout, `'Hello' in the batch vs alone, max \|diff\|: (\S+)`); !(d < 1e-4) {
		t.Errorf("'Hello' in a padded batch differs from 'Hello' alone by %v", d)
	}
	c = nb.cell(t, "model.Generate(")
	has(t, "generation", c.stdout, `(?m)^"`+regexp.QuoteMeta(eiffel)+`" -> ".+"$`, fmt.Sprintf(`(?m)^steps saved: \[5 1 1 %d\] greedy token per step: \[\d+ \d+ \d+ \d+ \d+\]$`, d.vocab))
	c = nb.cell(t, "t.Backward(")
	if g := number(t, "gradients", c.stdout, fmt.Sprintf(`gradient of the logit difference w\.r\.t\. layer 1's output: \[1 %d %d\] max \|g\| = (\S+)`, n, d.embd)); !(g > 0) {
		t.Errorf("zero gradient: %v", g)
	}
	has(t, "gradient norms", c.stdout, fmt.Sprintf(`(?m)^its norm at each position: float32\[1 %d\] \(batch, pos\)$`, n))
	c = nb.cell(t, "model.Scan(")
	has(t, "scan", c.stdout, fmt.Sprintf(`(?m)^transformer\.h\.0\.attn\.query\s+Float32\[1 %d %d\] \(batch, pos, embd\)$`, n, d.embd),
		fmt.Sprintf(`(?m)^transformer\.h\.0\.attn\.attn_weights\s+Float32\[1 4 %d %d\] \(batch, head, query_pos, key_pos\)$`, n, n),
		fmt.Sprintf(`(?m)^transformer\.h\.0\.mlp\.c_fc\s+Float32\[1 %d %d\] \(batch, pos, inner\)$`, n, 4*d.embd),
		fmt.Sprintf(`(?m)^transformer\.h\.0\.mlp\s+Float32\[1 %d %d\] \(batch, pos, embd\)$`, n, d.embd))
	return ablation
}

// TestNotebookParameters runs 02 on another model through -p: a 2-layer tiny GPT-2 with
// another seed, generated by make-tiny into a directory.
func TestNotebookParameters(t *testing.T) {
	k := needKernel(t)
	dir := filepath.Join(work, "tiny-2-layers")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		if r := gns(t, nil, "make-tiny", "--out", dir, "--layers", "2", "--seed", "3"); r.code != 0 {
			t.Fatalf("make-tiny: exit %d\n%s", r.code, r.stderr)
		}
	}
	e := runNotebook(t, k, "02_trace_and_save.ipynb", "modelName="+dir)
	params := e.nb.cell(t, "var modelName =")
	if !strings.Contains(params.source, strconv.Quote(dir)) {
		t.Errorf("the parameters cell was not rewritten:\n%s", params.source)
	}
	td := tinyDims
	td.name = dir
	other := checkTraceAndSave(t, e.nb, td)
	meta := checkRunMetadata(t, e, dir)
	if p, _ := meta["parameters"].(map[string]any); p["modelName"] != dir {
		t.Errorf("metadata.gonnsight.parameters = %v", meta["parameters"])
	}
	// The same cells on the default model give other numbers: the parameter reached the model.
	def := runNotebook(t, k, "02_trace_and_save.ipynb")
	c := def.nb.cell(t, "ablated, err :=")
	if ablation := number(t, "setting", c.stdout, `max \|logit change\| after the ablations: (\S+)`); ablation == other {
		t.Errorf("02 on %s gave the default model's numbers (%v)", dir, other)
	}
}

// The thresholds below on the trained model's structure come from measuring the committed
// notebooks' run (the values each test logs): they check what each notebook's text says the
// default model shows (and does not show), with room for other backends' rounding.

func TestNotebook03AttentionPatterns(t *testing.T) {
	k := needKernel(t)
	e := runNotebook(t, k, "03_attention_patterns.ipynb")
	checkRunMetadata(t, e, trained)
	const jury = "The jury said that the city of Atlanta had a primary election, and the jury"
	n := promptTokens(t, jury)
	c := e.nb.cell(t, "model.RunWithCache(prompt")
	has(t, "one head", c.stdout, `(?m)^model: `+trained+` \| backend: \S`, fmt.Sprintf(`(?m)^layer 0 attention: \[1 4 %d %d\] \[batch head query_pos key_pos\]$`, n, n),
		`(?m)^head 3: last token attends most to ".+" \(position \d+\)$`)
	if len(c.plain) != 1 {
		t.Fatalf("want one attention display:\n%s", c)
	}
	has(t, "one head", c.plain[0], `head 0 \(query \\ key\)`, `␣said`, `␣primary`)
	has(t, "one head HTML", c.html[0], `class="gns-heatmap"`, `␣said|said`)
	checkHTML(t, "one head", c.html[0])
	c = e.nb.cell(t, `display.ShowAttentionOf(res.Tensor("w")`)
	if len(c.plain) != 1 {
		t.Fatalf("want one attention grid display:\n%s", c)
	}
	has(t, "all heads", c.plain[0], `head 0 \(query \\ key\)`, `head 3 \(query \\ key\)`)
	has(t, "all heads HTML", c.html[0], `class="gns-attention-grid"`, `>layer \d+, head 3<`)
	checkHTML(t, "all heads", c.html[0])
	// Attention rows are softmaxed: the first query attends only to itself.
	has(t, "all heads", c.plain[0], `(?m)^The\s+1\s+0\s+0`)

	// The induction search runs and reports; the default model formed no induction head (its
	// card: the second copy of a random sequence is hardly easier than the first), which the
	// notebook's text says. If a retrained model has one, this fails and the text must change.
	c = e.nb.cell(t, "Diagonal(1-n)")
	m := regexp.MustCompile(`(?m)^best induction head: layer (\d) head (\d), score (\d\.\d{3})$`).FindStringSubmatch(c.stdout)
	if m == nil {
		t.Fatalf("no induction head line:\n%s", c)
	}
	score, _ := strconv.ParseFloat(m[3], 64)
	t.Logf("best induction head %s.%s, score %.3f", m[1], m[2], score)
	if score > maxInductionScore {
		t.Errorf("best induction score %.3f: above %.2f, the default model now has an induction head; update notebook 03's text", score, maxInductionScore)
	}
	has(t, "previous-token head", c.stdout, `(?m)^best previous-token head: layer \d head \d, score \d\.\d{3}$`)
	if len(c.plain) != 2 {
		t.Fatalf("want the score map and the head's pattern:\n%s", c)
	}
	has(t, "induction", c.plain[0], `induction score`)
	c = e.nb.cell(t, "experiments.PatchHeads(")
	pm := regexp.MustCompile(`(?m)^log p\(next\) clean (-?\d+\.\d{3}), corrupted (-?\d+\.\d{3})$`).FindStringSubmatch(c.stdout)
	if pm == nil {
		t.Fatalf("no clean/corrupted line:\n%s", c)
	}
	clean, _ := strconv.ParseFloat(pm[1], 64)
	corrupt, _ := strconv.ParseFloat(pm[2], 64)
	t.Logf("log p(next): clean %.3f, corrupted %.3f", clean, corrupt)
	if clean-corrupt > maxCopyGain {
		t.Errorf("the clean run predicts the copied token %.3f nats better than the corrupted one: the model copies now; update notebook 03's text", clean-corrupt)
	}
	has(t, "patching", c.stdout, `(?m)^patching layer \d head \d restores most: log p\(next\) -?\d+\.\d{3}$`)
}

func TestNotebook04ActivationPatching(t *testing.T) {
	k := needKernel(t)
	e := runNotebook(t, k, "04_activation_patching.ipynb")
	checkRunMetadata(t, e, trained)
	const cleanPrompt = "The President of the United"
	n := promptTokens(t, cleanPrompt)
	// One call: experiments.PatchResidual.
	c := e.nb.cell(t, "experiments.PatchResidual(")
	has(t, "one-call patching", c.stdout, `(?m)^model: `+trained+` \| backend: \S`, `(?m)^clean -?\d+\.\d{3}, corrupted -?\d+\.\d{3}$`)
	clean := number(t, "clean", c.stdout, `(?m)^clean (-?\d+\.\d{3}),`)
	corrupt := number(t, "corrupted", c.stdout, `(?m)^clean -?\d+\.\d{3}, corrupted (-?\d+\.\d{3})$`)
	t.Logf("logit diff (States - York): clean %.3f, corrupted %.3f", clean, corrupt)
	// The model knows both continuations (measured: about +11 and -10).
	if !(clean > minAnswerDiff && corrupt < -minAnswerDiff) {
		t.Errorf("logit diff clean %.3f, corrupted %.3f: want above %.0f and below -%.0f", clean, corrupt, minAnswerDiff, minAnswerDiff)
	}
	// Structure: at every layer the last position (" New" in the corrupted run) carries the
	// whole answer; the notebook's text says so.
	for L := 0; L < 4; L++ {
		has(t, "one-call patching", c.stdout, fmt.Sprintf(`(?m)^layer %d: patching "%d ␣New" restores most \(logit diff %.3f\)$`, L, n-1, clean))
	}
	if len(c.plain) != 1 || len(c.svg) != 1 || c.svg[0] == "" {
		t.Fatalf("want one heatmap picture:\n%s", c)
	}
	has(t, "one-call heatmap", c.plain[0], `activation patching: resid_pre`, `(?m)^3\s+-?\d`, `␣New`)
	// Heads, and attribution patching against them.
	c = e.nb.cell(t, "experiments.PatchHeads(")
	if len(c.plain) != 2 {
		t.Fatalf("want two heatmaps (patching, attribution patching):\n%s", c)
	}
	has(t, "heads", c.plain[0], `head outputs`, `(?m)^3\s+-?\d`)
	has(t, "attribution", c.plain[1], `attribution patching: head outputs`)
	has(t, "attribution", c.stdout, `(?m)^cosine\(attribution patching, activation patching\) over heads: -?\d\.\d{3}$`)
	// By hand.
	c = e.nb.cell(t, "display.ShowHeatmapOf(")
	has(t, "patching", c.stdout, `(?m)^model: `+trained+` \| backend: \S`, `(?m)^layer 0: patching " United" restores most \(logit diff \d`,
		`(?m)^layer 3: patching " United" restores most \(logit diff \d`)
	if len(c.plain) != 1 {
		t.Fatalf("want one heatmap display:\n%s", c)
	}
	has(t, "patching heatmap", c.plain[0], `logit diff \(States - York\)`, `(?m)^layer 0\s+-?\d`, `(?m)^layer 3\s+-?\d`, `␣United`)
	has(t, "patching heatmap HTML", c.html[0], `class="gns-heatmap"`, `layer 3`)
	checkHTML(t, "patching heatmap", c.html[0])
	m := regexp.MustCompile(`(?m)^(\d+) patched runs, compiled programs so far: (\d+)$`).FindStringSubmatch(c.stdout)
	if m == nil {
		t.Fatalf("no compile count:\n%s", c)
	}
	runsN, _ := strconv.Atoi(m[1])
	compiles, _ := strconv.Atoi(m[2])
	if runsN != 4*n {
		t.Errorf("%d patched runs, want 4 layers x %d positions", runsN, n)
	}
	// The position is a graph input: one program per layer, not one per patch.
	if compiles < 1 || compiles > 4 {
		t.Errorf("the sweep compiled %d programs for 4 layers", compiles)
	}
}

func TestNotebook05LogitLens(t *testing.T) {
	k := needKernel(t)
	e := runNotebook(t, k, "05_logit_lens.ipynb")
	checkRunMetadata(t, e, trained)
	c := e.nb.cell(t, "experiments.LogitLens(")
	has(t, "one-call lens", c.stdout, `(?m)^model: `+trained+` \| backend: \S`, `(?m)^p\(".+"\) at the last position, by layer: \[(\S+ ){4}\S+\]$`)
	if len(c.plain) != 2 {
		t.Fatalf("want the lens and the probability map:\n%s", c)
	}
	has(t, "one-call lens", c.plain[0], `(?m)^embed\s+\S`, `(?m)^3\s+\S`)
	has(t, "probability map", c.plain[1], `logit lens: probability of`)
	c = e.nb.cell(t, "display.ShowLogitLensOf(")
	m := regexp.MustCompile(`(?m)^p\("(.+)"\) by layer: \[(\d\.\d{3}) (\d\.\d{3}) (\d\.\d{3}) (\d\.\d{3})\]$`).FindStringSubmatch(c.stdout)
	if m == nil {
		t.Fatalf("no p(answer) by layer:\n%s", c)
	}
	var p [4]float64
	for i := range p {
		p[i], _ = strconv.ParseFloat(m[2+i], 64)
	}
	t.Logf("p(%q) by layer: %v", m[1], p)
	// The answer forms with depth: " States", unlikely after the first block, several times
	// likelier after the last (measured: 0.018 and 0.184).
	if m[1] != " States" || p[0] > maxEarlyLensProb || p[3] < minFinalLensProb || p[3] < 3*p[0] {
		t.Errorf("p(%q) by layer %v: want \" States\", at most %.2f after layer 0, at least %.2f and 3 times that after layer 3", m[1], p, maxEarlyLensProb, minFinalLensProb)
	}
	// ... and is the top prediction at the last position only in the later layers.
	has(t, "logit lens", c.plain[0], `(?m)^layer 2 .*␣States \(0\.\d\d\)\s*$`, `(?m)^layer 3 .*␣States \(0\.\d\d\)\s*$`)
	if regexp.MustCompile(`(?m)^layer 0 .*␣States \(0\.\d\d\)\s*$`).MatchString(c.plain[0]) {
		t.Errorf("\" States\" is already the top prediction after block 0; notebook 05's text says otherwise:\n%s", c.plain[0])
	}
	if len(c.plain) != 1 {
		t.Fatalf("want one logit lens display:\n%s", c)
	}
	has(t, "logit lens", c.plain[0], `(?m)^layer\s+He\s+␣said`, `(?m)^layer 0\s+\S`, `(?m)^layer 3\s+\S`, `\(\d\.\d\d\)`)
	has(t, "logit lens HTML", c.html[0], `class="gns-logitlens"`, `layer 3`)
	checkHTML(t, "logit lens", c.html[0])
}

// TestNotebook06TransformerLensDemo: TransformerLens's main demo in gonnsight, on the trained
// model; each section's output and its relation (DLA's parts add up), and its induction head.
func TestNotebook06TransformerLensDemo(t *testing.T) {
	k := needKernel(t)
	e := runNotebook(t, k, "06_transformerlens_demo.ipynb")
	checkRunMetadata(t, e, trained)
	n := promptTokens(t, ioi)
	c := e.nb.cell(t, `"blocks.*.attn.hook_pattern", "blocks.*.hook_resid_post"`)
	has(t, "cache", c.stdout, fmt.Sprintf(`(?m)^hook_pattern: \[1 4 %d %d\] \[batch head query_pos key_pos\]$`, n, n),
		fmt.Sprintf(`(?m)^hook_resid_post: \[1 %d 128\] \[batch pos embd\]$`, n))
	c = e.nb.cell(t, "hook_z")
	m := regexp.MustCompile(`(?m)^loss (\d+\.\d+), with head 0\.1 ablated (\d+\.\d+)$`).FindStringSubmatch(c.stdout)
	if m == nil || m[1] == m[2] {
		t.Errorf("head ablation through hook_z: want two different losses:\n%s", c)
	}
	c = e.nb.cell(t, "experiments.AblateHeads(")
	has(t, "ablation", c.stdout, `(?m)^unablated logit diff -?\d\.\d{3}; ablating layer \d head \d lowers it most`)
	c = e.nb.cell(t, "experiments.PatchResidual(")
	if len(c.svg) != 3 {
		t.Errorf("want three patching pictures (residual, attention, heads), got %d:\n%s", len(c.svg), c)
	}
	c = e.nb.cell(t, "experiments.DirectLogitAttribution(")
	m = regexp.MustCompile(`(?m)^sum of the parts \+ ln_f bias = (-?\d+\.\d{4}); the model's logit difference = (-?\d+\.\d{4})$`).FindStringSubmatch(c.stdout)
	if m == nil || m[1] != m[2] {
		t.Errorf("direct logit attribution's parts do not add up:\n%s", c)
	}
	c = e.nb.cell(t, "Diagonal(1-n)")
	score := number(t, "induction", c.stdout, `(?m)^best induction score (\d\.\d{3}) at layer \d head \d$`)
	t.Logf("best induction score %.3f", score)
	has(t, "induction", c.plain[0], `induction score`)
	c = e.nb.cell(t, "lens.Show()")
	if len(c.svg) != 1 {
		t.Errorf("want the logit lens picture:\n%s", c)
	}
}

// Thresholds on the trained model's structure (see the note above TestNotebook03), from the
// committed run: induction score 0.034, copy gain -0.175 nats, logit diffs +11.1 / -9.9,
// p(" States") 0.018 after block 0 and 0.184 after block 3.
const (
	maxInductionScore = 0.2
	maxCopyGain       = 1.0
	minAnswerDiff     = 5.0
	maxEarlyLensProb  = 0.06
	minFinalLensProb  = 0.1
)

// TestNotebookNbconvert runs the walkthrough through Jupyter's own `nbconvert --execute` and
// compares its outputs with the Go runner's.
func TestNotebookNbconvert(t *testing.T) {
	k := needKernel(t)
	py := jupyterPython(t)
	goRun := runNotebook(t, k, "01_edit_walkthrough.ipynb")

	outDir := filepath.Join(work, "nbconvert")
	cmd := exec.Command(py, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
		"--ExecutePreprocessor.kernel_name=gonnsight", "--ExecutePreprocessor.timeout=600",
		"--ExecutePreprocessor.startup_timeout=180", "--output-dir", outDir, "--output", "01_nbconvert",
		filepath.Join(golden.Root(), "notebooks", "01_edit_walkthrough.ipynb"))
	cmd.Env = k.environ()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jupyter nbconvert --execute: %v\n%s", err, tail(string(out), 6000))
	}
	t.Logf("nbconvert --execute: %v", time.Since(start).Round(100*time.Millisecond))
	nb := readNotebook(t, filepath.Join(outDir, "01_nbconvert.ipynb"))
	checkWalkthrough(t, nb, trained)

	// Every cell of the walkthrough is deterministic: the same text from both clients.
	a, b := goRun.nb.codeCells(), nb.codeCells()
	if len(a) != len(b) {
		t.Fatalf("%d code cells from the Go runner, %d from nbconvert", len(a), len(b))
	}
	for i := range a {
		if a[i].stdout != b[i].stdout || a[i].stderr != b[i].stderr {
			t.Errorf("code cell %d: streams differ\nGo runner:\n%s\nnbconvert:\n%s", i+1, a[i], b[i])
		}
		if strings.Join(a[i].plain, "\x00") != strings.Join(b[i].plain, "\x00") ||
			strings.Join(a[i].html, "\x00") != strings.Join(b[i].html, "\x00") {
			t.Errorf("code cell %d: displays differ\nGo runner:\n%s\nnbconvert:\n%s", i+1, a[i], b[i])
		}
	}
}
