package runner

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunNotebookHeader(t *testing.T) {
	needKernel(t)
	t.Parallel()
	path := writeNotebook(t, "#md # Title", "#parameters\nn = 3\n", "print('a' * n)", "x = 1/0", "print('after')")
	out := filepath.Join(t.TempDir(), "out.ipynb")
	opts := Options{Out: out, Header: true, AllowErrors: true, Version: "v-test", Params: map[string]string{"n": "2"},
		ExtraMetadata: map[string]any{"backend": "go (test)", "model": "tiny | model"}}
	if _, err := RunNotebook(path, opts); err != nil {
		t.Fatal(err)
	}
	check := func(out string) []map[string]any {
		t.Helper()
		validateWithNbformat(t, out)
		cells := notebookCells(readBack(t, out))
		var headers int
		for _, c := range cells {
			if isRunHeader(c) {
				headers++
			}
		}
		if headers != 1 || !isRunHeader(cells[0]) {
			t.Fatalf("want exactly one run header, first; got %d (first cell %v)", headers, cells[0])
		}
		h := cellSource(cells[0])
		for _, want := range []string{"gonnsight `v-test`", "backend `go (test)`", "model `tiny | model`", " UTC", "`n=2`",
			"| [1] | ok |", "`n = 2`", "| [2] | ok |", "`print('a' * n)`", "| [3] | **error** |", "| [4] | ok |"} {
			if !strings.Contains(h, want) {
				t.Errorf("run header lacks %q:\n%s", want, h)
			}
		}
		if got := outputText(cells[3]); got != "aa\n" {
			t.Errorf("cell after the header: output %q", got)
		}
		return cells
	}
	cells := check(out)
	if cells[1]["cell_type"] != "markdown" || cellSource(cells[1]) != "# Title" {
		t.Errorf("the notebook's own first cell moved: %v", cells[1])
	}
	// Running the executed notebook again replaces its header rather than adding one.
	out2 := filepath.Join(t.TempDir(), "out2.ipynb")
	opts.Out = out2
	res, err := RunNotebook(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	check(out2)
	if res.Cells[0].Number != 2 {
		t.Errorf("cell numbers should not count the old header: first code cell is %d", res.Cells[0].Number)
	}
	// Without Header, no header.
	plain := filepath.Join(t.TempDir(), "plain.ipynb")
	if _, err := RunNotebook(path, Options{Out: plain, AllowErrors: true}); err != nil {
		t.Fatal(err)
	}
	if isRunHeader(notebookCells(readBack(t, plain))[0]) {
		t.Errorf("a header was written without Options.Header")
	}
}

// TestRunNotebookErrorOutput: a failing cell's error carries what the cell wrote about the
// failure (stderr, an HTML error report as text), not only the kernel's one-line error.
func TestRunNotebookErrorOutput(t *testing.T) {
	needKernel(t)
	t.Parallel()
	report := `<style>.gonb-err-location{}</style><div class="jp-RenderedText" data-mime-type="application/vnd.jupyter.stderr">` +
		`<div style="white-space: pre-wrap;"><span class="gonb-err-location">./main.go:11:6: </span>undefined: undefinedThing` +
		`<div class="gonb-err-context">func main() {<div class="gonb-err-line">x := undefinedThing + 1</div>}</div></div></div>`
	path := writeNotebook(t,
		"import sys\nsys.stderr.write('panic: index out of range [3] with length 0\\n'); sys.stderr.flush()\nraise RuntimeError('exit status 2')",
		"from IPython.display import HTML, display\ndisplay(HTML("+pyQuote(report)+"))\nraise RuntimeError('exit status 1')")
	res, err := RunNotebook(path, Options{Header: true, AllowErrors: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 2 || res.Cells[0].Err == nil || res.Cells[1].Err == nil {
		t.Fatalf("cells %+v", res.Cells)
	}
	if msg := res.Cells[0].Err.Error(); !strings.Contains(msg, "exit status 2") || !strings.Contains(msg, "panic: index out of range [3] with length 0") {
		t.Errorf("the panic's text is missing from the error:\n%s", msg)
	}
	msg := res.Cells[1].Err.Error()
	if !strings.Contains(msg, "./main.go:11:6: undefined: undefinedThing") {
		t.Errorf("the compiler's message is missing from the error:\n%s", msg)
	}
	if strings.Contains(msg, "func main") || strings.Contains(msg, "gonb-err") || strings.Contains(msg, "<") {
		t.Errorf("the error keeps the report's markup or hover-only context:\n%s", msg)
	}
	g := readBack(t, res.OutputPath)["metadata"].(map[string]any)[MetadataKey].(map[string]any)
	if e, _ := g["cells"].([]any)[0].(map[string]any)["error"].(string); !strings.Contains(e, "panic: index out of range") {
		t.Errorf("metadata.gonnsight.cells[0].error = %q", e)
	}
	// Stopping at the error: the returned error and the header say it too.
	res, err = RunNotebook(path, Options{Header: true})
	var ce *CellError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "panic: index out of range") {
		t.Fatalf("want the panic's text in the run's error, got %v", err)
	}
	h := cellSource(notebookCells(readBack(t, res.OutputPath))[0])
	if !strings.Contains(h, "**The run stopped:** cell 1") || !strings.Contains(h, "panic: index out of range [3] with length 0") {
		t.Errorf("the header does not show why the run stopped:\n%s", h)
	}
}

func pyQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

func TestErrorTextOfGoNBReport(t *testing.T) {
	// The shape of GoNB v0.11.5's compile error report (trimmed).
	h := "\n<style>\n.gonb-err-location {\n\tbackground: red;\n}\n</style>\n" +
		`<div class="jp-RenderedText" data-mime-type="application/vnd.jupyter.stderr" style="font-family: monospace;">` + "\n\n" +
		`<div style="white-space: pre-wrap;"> # gonb_082b14e1</div>` + "\n\n" +
		`<div style="white-space: pre-wrap;"><span class="gonb-err-hover-area"><span class="gonb-cell-line-info">Cell[2]: Line 2</span> ` +
		`<span class="gonb-err-location">./main.go:11:6: </span></span>undefined: undefinedThing &amp; more<div class="gonb-err-context">` + "\nfunc main() {\n\tflag.Parse()\n" +
		`<div class="gonb-err-line">x := undefinedThing + 1` + "\n</div>fmt.Println(x)\n\n</div></div>\n\n" + `<div style="white-space: pre-wrap;"> </div>` + "\n\n</div>\n"
	got := errorText([]map[string]any{
		{"output_type": "display_data", "data": map[string]any{"text/html": h}},
		{"output_type": "stream", "name": "stdout", "text": "not an error\n"},
		{"output_type": "display_data", "data": map[string]any{"text/html": "<b>a plain display</b>"}},
	})
	want := " # gonb_082b14e1\nCell[2]: Line 2 ./main.go:11:6: undefined: undefinedThing & more"
	if got != want {
		t.Errorf("errorText =\n%q\nwant\n%q", got, want)
	}
	if got := errorText([]map[string]any{{"output_type": "stream", "name": "stderr", "text": "\x1b[7m[[ Cell [3] Line 3 ]]\x1b[0m main.go:12\n"}}); got != "[[ Cell [3] Line 3 ]] main.go:12" {
		t.Errorf("ANSI escapes kept: %q", got)
	}
}

func TestCompleteLanguageInfo(t *testing.T) {
	// What GoNB v0.11.5 reports.
	gonb := map[string]any{"codemirror_mode": "", "file_extension": ".go", "mimetype": "text/x-go", "name": "go",
		"nbconvert_exporter": "", "pygments_lexer": "", "version": "go1.26"}
	got := completeLanguageInfo(gonb, "go")
	if got["pygments_lexer"] != "go" || got["codemirror_mode"] != "go" || got["name"] != "go" || got["version"] != "go1.26" {
		t.Errorf("language_info = %v", got)
	}
	if _, ok := got["nbconvert_exporter"]; ok {
		t.Errorf("empty nbconvert_exporter kept: %v", got)
	}
	py := map[string]any{"name": "python", "pygments_lexer": "ipython3", "codemirror_mode": map[string]any{"name": "ipython"}}
	if got := completeLanguageInfo(py, "python"); got["pygments_lexer"] != "ipython3" {
		t.Errorf("a kernel's own lexer was replaced: %v", got)
	}
	if got := completeLanguageInfo(map[string]any{}, "Go"); got["name"] != "go" || got["pygments_lexer"] != "go" {
		t.Errorf("no name: %v", got)
	}
}
