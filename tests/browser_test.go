package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gonnsight/gonnsight/internal/golden"
)

// The committed tutorials opened as a reader meets them: in the classic Jupyter notebook page
// (Debian's jupyter-notebook), untrusted as a downloaded notebook is, in headless Chromium.
// Every picture (a display carrying an image, or HTML that draws one) must show as an image or
// svg element of non-zero size. Screenshots are kept in $GONNSIGHT_ARTIFACTS (default
// tests/artifacts/browser, ignored by git).

// browserTools finds Chromium and the classic notebook server, or skips (fails under
// GONNSIGHT_CI=1, where ./install.sh has installed them).
func browserTools(t *testing.T) (chromium, python string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a notebook server and Chromium: skipped in -short mode")
	}
	missing := func(what string) {
		msg := what + " (Debian: apt-get install chromium jupyter-notebook; ./install.sh does it)"
		if os.Getenv("GONNSIGHT_CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		missing("no Chromium on PATH")
	}
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		p, err := exec.LookPath(py)
		if err == nil && exec.Command(p, "-c", "import notebook.notebookapp").Run() == nil {
			return chromium, p
		}
	}
	missing("no python3 with the classic notebook server (notebook.notebookapp)")
	return "", ""
}

// notebookServer starts `jupyter notebook` on dir with a fresh token and an in-memory trust
// database (nothing is trusted), and returns its base URL and token.
func notebookServer(t *testing.T, python, dir string) (string, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	tok := make([]byte, 16)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	cfg := t.TempDir()
	cmd := exec.Command(python, "-m", "notebook", "--no-browser", "--allow-root",
		fmt.Sprintf("--port=%d", port), "--ip=127.0.0.1", "--notebook-dir="+dir,
		"--NotebookApp.token="+token, "--NotebookNotary.db_file=:memory:")
	cmd.Env = append(os.Environ(), "JUPYTER_CONFIG_DIR="+cfg, "JUPYTER_RUNTIME_DIR="+filepath.Join(cfg, "runtime"))
	logf, err := os.Create(filepath.Join(cfg, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the notebook server: %v", err)
	}
	t.Cleanup(func() {
		// SIGTERM lets the server shut down the kernels the pages started.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/api?token=" + token)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base, token
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(cfg, "server.log"))
			t.Fatalf("the notebook server did not answer within 60 s:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pictureCheck runs in the page: for every output of every cell that is a picture, whether an
// img or svg of non-zero size shows. A picture is a display whose bundle carries an image, or
// whose HTML draws one (svg, img, or gonnsight's grids of coloured cells: heatmaps, attention,
// logit lens). Tables (graphs, trees, top-k) are text, not pictures.
const pictureCheck = `(() => {
  const nb = Jupyter.notebook;
  const out = {trusted: nb.trusted, pictures: []};
  nb.get_cells().forEach((cell, ci) => {
    if (!cell.output_area) return;
    const areas = cell.output_area.element[0].querySelectorAll(':scope > .output_area');
    cell.output_area.outputs.forEach((o, oi) => {
      const d = o.data || {};
      const html = String(d['text/html'] || '');
      const picture = d['image/png'] !== undefined || d['image/svg+xml'] !== undefined ||
        /<svg|<img|class="gns-(heatmap|logitlens|attention|grid)/i.test(html);
      if (!picture) return;
      const area = areas[oi];
      let shown = 0;
      if (area) {
        area.querySelectorAll('img, svg').forEach(el => {
          const r = el.getBoundingClientRect();
          if (r.width > 0 && r.height > 0) shown++;
        });
      }
      out.pictures.push({cell: ci, output: oi, mimes: Object.keys(d).join(','), shown: shown});
    });
  });
  return JSON.stringify(out);
})()`

type pictureReport struct {
	Trusted  bool `json:"trusted"`
	Pictures []struct {
		Cell   int    `json:"cell"`
		Output int    `json:"output"`
		Mimes  string `json:"mimes"`
		Shown  int    `json:"shown"`
	} `json:"pictures"`
}

func TestTutorialPicturesShowUntrusted(t *testing.T) {
	chromium, python := browserTools(t)
	root := golden.Root()
	nbs, _ := filepath.Glob(filepath.Join(root, "notebooks", "*.ipynb"))
	if len(nbs) == 0 {
		t.Fatal("no notebooks in notebooks/")
	}
	// A copy, as a download is: the server has never signed it.
	dir := t.TempDir()
	for _, p := range nbs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	artifacts := os.Getenv("GONNSIGHT_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(root, "tests", "artifacts")
	}
	artifacts = filepath.Join(artifacts, "browser")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	base, token := notebookServer(t, python, dir)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1600), chromedp.Flag("disable-gpu", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	total := 0
	for _, p := range nbs {
		name := filepath.Base(p)
		t.Run(strings.TrimSuffix(name, ".ipynb"), func(t *testing.T) {
			// A tab per notebook: the notebook page asks before it is left, so tabs are not reused.
			tab, closeTab := chromedp.NewContext(bctx)
			defer closeTab()
			ctx, cancel := context.WithTimeout(tab, 90*time.Second)
			defer cancel()
			err := chromedp.Do(ctx,
				chromedp.Navigate(base+"/notebooks/"+name+"?token="+token),
				chromedp.Poll[chromedp.Void](`typeof Jupyter !== 'undefined' && Jupyter.notebook && Jupyter.notebook._fully_loaded`,
					chromedp.WithPollingTimeout(60*time.Second)),
				chromedp.Sleep(time.Second), // images decode
			)
			var raw string
			var shot []byte
			if err == nil {
				raw, err = chromedp.Run(ctx, chromedp.Evaluate[string](pictureCheck))
			}
			if err == nil {
				// The notebook scrolls inside #site; unfold it so the screenshot has every cell.
				_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById('site');
					s.style.height = 'auto'; s.style.overflow = 'visible'; document.body.style.overflow = 'visible'; return true })()`))
			}
			if err == nil {
				shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
			}
			if err != nil {
				t.Fatalf("opening %s in the notebook page: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(artifacts, strings.TrimSuffix(name, ".ipynb")+".png"), shot, 0o644); err != nil {
				t.Error(err)
			}
			var rep pictureReport
			if err := json.Unmarshal([]byte(raw), &rep); err != nil {
				t.Fatalf("page report %q: %v", raw, err)
			}
			if rep.Trusted {
				t.Error("the page trusts the copied notebook; the check must see it untrusted")
			}
			for _, pic := range rep.Pictures {
				total++
				if pic.Shown == 0 {
					t.Errorf("cell %d output %d (%s): no image or svg of non-zero size shows in the untrusted page",
						pic.Cell, pic.Output, pic.Mimes)
				}
			}
			t.Logf("%s: %d pictures, screenshot %s", name, len(rep.Pictures), filepath.Join(artifacts, strings.TrimSuffix(name, ".ipynb")+".png"))
		})
	}
	if total == 0 {
		t.Error("no pictures found in any tutorial: the check finds nothing to check")
	}
}
