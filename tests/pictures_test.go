package tests

import (
	"encoding/base64"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Pictures that survive: every heatmap-like display of the tutorials carries an SVG picture,
// as image/svg+xml and as an <img> data URI inside its HTML (which Jupyter's sanitizer keeps
// in untrusted notebooks), and nbconvert's HTML export shows each one. The executed notebooks
// say they are Go (highlighted as Go by nbconvert) and start with the run's header.

// svgTexts parses an SVG document and returns its <text> contents by class.
func svgTexts(t *testing.T, what, svg string) map[string][]string {
	t.Helper()
	texts := map[string][]string{}
	dec := xml.NewDecoder(strings.NewReader(svg))
	class, in, root := "", false, false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: the image/svg+xml is not well-formed: %v", what, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if !root && e.Name.Local != "svg" {
				t.Fatalf("%s: image/svg+xml has root <%s>", what, e.Name.Local)
			}
			root = true
			if e.Name.Local == "text" {
				in, class = true, ""
				for _, a := range e.Attr {
					if a.Name.Local == "class" {
						class = a.Value
					}
				}
				texts[class] = append(texts[class], "")
			}
		case xml.EndElement:
			in = in && e.Name.Local != "text"
		case xml.CharData:
			if in {
				texts[class][len(texts[class])-1] += string(e)
			}
		}
	}
	return texts
}

var imgSVG = regexp.MustCompile(`<img class="gns-picture" alt="[^"]*" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)">`)

// checkPicture checks one picture display and returns its SVG's texts.
func checkPicture(t *testing.T, what string, c cellOutput, i int) map[string][]string {
	t.Helper()
	if i >= len(c.svg) || c.svg[i] == "" {
		t.Fatalf("%s: the display has no image/svg+xml:\n%s", what, c)
	}
	m := imgSVG.FindStringSubmatch(c.html[i])
	if m == nil {
		t.Fatalf("%s: the HTML has no <img> with an SVG data URI", what)
	}
	raw, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil || string(raw) != c.svg[i] {
		t.Errorf("%s: the HTML's <img> is not the image/svg+xml picture (%v)", what, err)
	}
	texts := svgTexts(t, what, c.svg[i])
	if len(texts["axis-title"]) < 2 || len(texts["tick"]) < 2 {
		t.Errorf("%s: want two axis titles and a ticked colour bar, got titles %q ticks %q", what, texts["axis-title"], texts["tick"])
	}
	return texts
}

func TestNotebookPictures(t *testing.T) {
	k := needKernel(t)
	type pic struct {
		notebook, marker string
		want             []string // texts the picture must show
	}
	pics := []pic{
		{"03_attention_patterns.ipynb", "model.RunWithCache(prompt", []string{"layer 0, head 0", "query", "key", "attention weight", "␣said"}},
		{"03_attention_patterns.ipynb", "display.ShowAttentionOf(", []string{"layer 3, head 0", "layer 3, head 3", "attention weight"}},
		{"04_activation_patching.ipynb", "display.ShowHeatmapOf(", []string{"patched layer", "patched position", "logit diff (States - York)", "layer 3"}},
		{"04_activation_patching.ipynb", "experiments.PatchResidual(", []string{"layer", "position", "metric", "4 ␣New"}},
		{"05_logit_lens.ipynb", "display.ShowLogitLensOf(", []string{"layer", "input position", "p(top token)", "layer 3"}},
		{"03_attention_patterns.ipynb", "Diagonal(1-n)", []string{"layer", "head", "induction score"}},
		{"06_transformerlens_demo.ipynb", "Diagonal(1-n)", []string{"layer", "head", "induction score"}},
	}
	perNotebook := map[string]bool{}
	for _, p := range pics {
		e := runNotebook(t, k, p.notebook)
		c := e.nb.cell(t, p.marker)
		texts := checkPicture(t, p.notebook+" "+p.marker, c, 0)
		var all []string
		for _, l := range texts {
			all = append(all, l...)
		}
		for _, w := range p.want {
			found := false
			for _, s := range all {
				found = found || s == w
			}
			if !found {
				t.Errorf("%s %s: the picture lacks the text %q; it has %q", p.notebook, p.marker, w, all)
			}
		}
		perNotebook[p.notebook] = true
	}

	// nbconvert's HTML export (what nbviewer shows) keeps every picture, and highlights Go.
	py := jupyterPython(t)
	for name := range perNotebook {
		e := runNotebook(t, k, name)
		n := 0 // every picture of the notebook
		for _, c := range e.nb.codeCells() {
			for _, svg := range c.svg {
				if svg != "" {
					n++
				}
			}
		}
		checkGoNotebook(t, e)
		dir := filepath.Join(work, "html")
		out := filepath.Join(dir, strings.TrimSuffix(name, ".ipynb"))
		cmd := exec.Command(py, "-m", "jupyter", "nbconvert", "--to", "html", "--output-dir", dir,
			"--output", filepath.Base(out), e.out)
		cmd.Env = k.environ()
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nbconvert --to html %s: %v\n%s", name, err, b)
		}
		data, err := os.ReadFile(out + ".html")
		if err != nil {
			t.Fatal(err)
		}
		h := string(data)
		if got := len(imgSVG.FindAllString(h, -1)); got != n {
			t.Errorf("nbconvert's HTML of %s shows %d pictures (<img> with an SVG), want %d", name, got, n)
		}
		if !strings.Contains(h, `<span class="kd">func</span>`) {
			t.Errorf("nbconvert's HTML of %s does not highlight Go (no func keyword span)", name)
		}
		if !strings.Contains(h, "Run log") {
			t.Errorf("nbconvert's HTML of %s lacks the run header", name)
		}
	}
}

// checkGoNotebook checks that an executed notebook says it is Go and starts with the run
// header, which names the model and backend and times every code cell.
func checkGoNotebook(t *testing.T, e *executed) {
	t.Helper()
	li, _ := e.nb.Metadata["language_info"].(map[string]any)
	ks, _ := e.nb.Metadata["kernelspec"].(map[string]any)
	if li["name"] != "go" || li["pygments_lexer"] != "go" || ks["language"] != "go" {
		t.Errorf("%s: language_info %v, kernelspec %v; want go", e.out, li, ks)
	}
	first := e.nb.Cells[0]
	src := multiline(first.Source)
	if first.CellType != "markdown" || !strings.Contains(src, "**Run log**") {
		t.Fatalf("%s: the first cell is not the run header:\n%s", e.out, src)
	}
	g, _ := e.nb.Metadata["gonnsight"].(map[string]any)
	for _, want := range []string{"model `" + trained + "`", "backend `", "gonnsight `" + g["version"].(string) + "`", " UTC"} {
		if !strings.Contains(src, want) {
			t.Errorf("%s: the run header lacks %q:\n%s", e.out, want, src)
		}
	}
	rows := regexp.MustCompile(`(?m)^\| \[\d+\] \| ok \| \d+\.\d\d \| `).FindAllString(src, -1)
	if len(rows) != len(e.nb.codeCells()) {
		t.Errorf("%s: the run header times %d cells of %d:\n%s", e.out, len(rows), len(e.nb.codeCells()), src)
	}
}

// TestRunFailingCell: `gonnsight run` shows the compiler's message and the panic of failing
// cells, not only GoNB's "exit status 1".
func TestRunFailingCell(t *testing.T) {
	k := needKernel(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "failing.ipynb")
	nb := `{"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "gonnsight", "display_name": "Go (gonnsight)", "language": "go"}},
 "cells": [
  {"cell_type": "code", "id": "a", "metadata": {}, "execution_count": null, "outputs": [], "source": "import \"fmt\"\n%%\nfmt.Println(\"fine\")"},
  {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": null, "outputs": [], "source": "%%\nx := undefinedThing + 1\nfmt.Println(x)"},
  {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": null, "outputs": [], "source": "%%\nvar a []int\nfmt.Println(a[3])"}
 ]}`
	if err := os.WriteFile(path, []byte(nb), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"run", path, "--out", filepath.Join(dir, "out.ipynb")}, args...)...)
		cmd.Env = k.environ()
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := run("--allow-errors")
	if code != 0 {
		t.Errorf("--allow-errors: exit %d\n%s", code, out)
	}
	for _, want := range []string{"cell 2: error", "undefined: undefinedThing", "cell 3: error", "panic: runtime error: index out of range [3] with length 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("--allow-errors: the output lacks %q:\n%s", want, out)
		}
	}
	out, code = run()
	if code == 0 || !strings.Contains(out, "gonnsight run: cell 2: ") || !strings.Contains(out, "undefined: undefinedThing") {
		t.Errorf("stopping at the failing cell: exit %d, want the compiler's message:\n%s", code, out)
	}
	header := readNotebook(t, filepath.Join(dir, "out.ipynb")).Cells[0]
	if src := multiline(header.Source); !strings.Contains(src, "**The run stopped:** cell 2") || !strings.Contains(src, "undefined: undefinedThing") {
		t.Errorf("the run header does not say why the run stopped:\n%s", src)
	}
}
