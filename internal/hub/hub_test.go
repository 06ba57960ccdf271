package hub

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/hubtest"
)

const repoID = "org/tiny"

func tinyFiles() map[string][]byte {
	weights := make([]byte, 3000)
	for i := range weights {
		weights[i] = byte(i * 7)
	}
	return map[string][]byte{
		"config.json":       []byte(`{"model_type":"gpt2"}`),
		"tokenizer.json":    []byte(`{"version":"1.0"}`),
		"model.safetensors": weights, // LFS: served through a 302 to the CDN
		"onnx/model.onnx":   []byte("onnx bytes"),
	}
}

// setup starts a fake hub with org/tiny and points the environment at it with an empty cache.
func setup(t *testing.T) (*hubtest.Hub, string) {
	t.Helper()
	h := hubtest.New(t, hubtest.Config{
		Repos: map[string]map[string][]byte{repoID: tinyFiles()},
		Gated: map[string]string{"org/gated": "secret-token"},
	})
	h.SetRepo("org/gated", map[string][]byte{"config.json": []byte(`{}`)})
	cache := hubtest.SetEnv(t, h.URL)
	return h, cache
}

var (
	required = []string{"config.json", "model.safetensors"}
	optional = []string{"tokenizer.json", "vocab.json", "merges.txt"}
)

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkFiles(t *testing.T, res *Resolved, want map[string][]byte, names ...string) {
	t.Helper()
	for _, n := range names {
		p, ok := res.Files[n]
		if !ok {
			t.Fatalf("file %q missing from %v", n, res.Files)
		}
		if filepath.Dir(p) != filepath.Join(res.Dir, filepath.Dir(filepath.FromSlash(n))) {
			t.Errorf("file %q at %s is not inside Dir %s", n, p, res.Dir)
		}
		if got := readFile(t, p); !bytes.Equal(got, want[n]) {
			t.Errorf("file %q: content differs (%d bytes, want %d)", n, len(got), len(want[n]))
		}
	}
}

func noIncomplete(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && (strings.Contains(info.Name(), ".incomplete") || strings.HasSuffix(info.Name(), ".tmp") || strings.Contains(info.Name(), ".tmp-")) {
			t.Errorf("leftover temporary file %s", p)
		}
		return nil
	})
}

func TestDownloadLayout(t *testing.T) {
	h, cache := setup(t)
	files := tinyFiles()
	res, err := Resolve(repoID, required, append(optional, "onnx/model.onnx"), nil)
	if err != nil {
		t.Fatal(err)
	}
	commit := h.Commit(repoID)
	repoDir := filepath.Join(cache, "models--org--tiny")
	if res.Local || res.Commit != commit || res.Dir != filepath.Join(repoDir, "snapshots", commit) {
		t.Fatalf("got %+v, want commit %s", res, commit)
	}
	checkFiles(t, res, files, "config.json", "model.safetensors", "tokenizer.json", "onnx/model.onnx")
	if _, ok := res.Files["vocab.json"]; ok {
		t.Error("vocab.json does not exist but was returned")
	}
	if got := strings.Join(res.Downloaded, ","); got != "config.json,model.safetensors,tokenizer.json,onnx/model.onnx" {
		t.Errorf("Downloaded = %s", got)
	}

	// refs/main holds the commit hash, with no newline, as huggingface_hub writes it.
	if ref := string(readFile(t, filepath.Join(repoDir, "refs", "main"))); ref != commit {
		t.Errorf("refs/main = %q, want %q", ref, commit)
	}
	// Blobs are named by the hub's ETag: sha256 for LFS files (X-Linked-Etag, not the CDN's ETag), git sha1 otherwise.
	for name, content := range files {
		blob := filepath.Join(repoDir, "blobs", h.BlobName(name, content))
		if got := readFile(t, blob); !bytes.Equal(got, content) {
			t.Errorf("blob of %s differs", name)
		}
		link := filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(name))
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatalf("%s is not a symlink: %v", link, err)
		}
		up := strings.Repeat("../", strings.Count(name, "/")+2)
		if want := filepath.FromSlash(up + "blobs/" + h.BlobName(name, content)); target != want {
			t.Errorf("%s -> %s, want %s", link, target, want)
		}
	}
	if hubtest.SHA256(files["model.safetensors"]) != h.BlobName("model.safetensors", files["model.safetensors"]) {
		t.Error("model.safetensors is expected to be an LFS file")
	}
	// A 404 is remembered in .no_exist, as huggingface_hub does.
	if _, err := os.Stat(filepath.Join(repoDir, ".no_exist", commit, "vocab.json")); err != nil {
		t.Errorf(".no_exist marker: %v", err)
	}
	noIncomplete(t, cache)
}

func TestSecondResolveHitsCache(t *testing.T) {
	h, _ := setup(t)
	first, err := Resolve(repoID, required, optional, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := len(h.Requests())
	second, err := Resolve(repoID, required, optional, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Downloaded) != 0 {
		t.Errorf("second resolve downloaded %v", second.Downloaded)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		if d := h.Downloads(repoID, f); d != 1 {
			t.Errorf("%s sent %d times", f, d)
		}
		if first.Files[f] != second.Files[f] {
			t.Errorf("%s: %s then %s", f, first.Files[f], second.Files[f])
		}
	}
	for _, r := range h.Requests()[n:] {
		if !strings.HasPrefix(r, "HEAD ") {
			t.Errorf("second resolve made request %q, want only HEADs", r)
		}
		if strings.Contains(r, "/resolve/main/") && !strings.Contains(r, "config.json") {
			// After the first file, requests are pinned to the commit.
			t.Errorf("request %q not pinned to the commit", r)
		}
	}
}

func TestOfflineCachedWithServerDown(t *testing.T) {
	h, _ := setup(t)
	online, err := Resolve(repoID, required, optional, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	for _, v := range []string{"1", "true", "YES"} {
		t.Setenv("HF_HUB_OFFLINE", v)
		res, err := Resolve(repoID, required, optional, nil)
		if err != nil {
			t.Fatalf("HF_HUB_OFFLINE=%s: %v", v, err)
		}
		if res.Dir != online.Dir || res.Commit != online.Commit || len(res.Downloaded) != 0 || len(res.Files) != 3 {
			t.Errorf("offline: %+v, online: %+v", res, online)
		}
		checkFiles(t, res, tinyFiles(), "config.json", "model.safetensors", "tokenizer.json")
	}
	// Online but the hub is unreachable: the cache is used, like huggingface_hub.
	t.Setenv("HF_HUB_OFFLINE", "")
	res, err := Resolve(repoID, required, optional, nil)
	if err != nil {
		t.Fatalf("unreachable hub with a cached model: %v", err)
	}
	checkFiles(t, res, tinyFiles(), "config.json", "model.safetensors", "tokenizer.json")
	// Options.Offline overrides the environment.
	off := true
	if _, err := Resolve(repoID, required, nil, &Options{Offline: &off}); err != nil {
		t.Fatal(err)
	}
	// A commit hash that is cached needs no request at all.
	if _, err := Resolve(repoID+"@"+online.Commit, required, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCommitRevisionCachedMakesNoRequest(t *testing.T) {
	h, _ := setup(t)
	commit := h.Commit(repoID)
	if _, err := Resolve(repoID, required, nil, &Options{Revision: commit}); err != nil {
		t.Fatal(err)
	}
	n := len(h.Requests())
	res, err := Resolve(repoID+"@"+commit, required, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != commit || len(h.Requests()) != n {
		t.Errorf("commit %s, %d new requests", res.Commit, len(h.Requests())-n)
	}
}

func TestOfflineUncached(t *testing.T) {
	_, cache := setup(t)
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, err := Resolve("x/y", []string{"config.json", "model.safetensors"}, []string{"tokenizer.json"}, nil)
	want := fmt.Sprintf(`model "x/y" is not in the Hugging Face cache at %s and HF_HUB_OFFLINE is set; files looked for: config.json, model.safetensors`, cache)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrNotCached) {
		t.Error("not ErrNotCached")
	}
}

func TestUnreachableUncached(t *testing.T) {
	h, _ := setup(t)
	h.Close()
	_, err := Resolve(repoID, required, optional, nil)
	if err == nil || !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "cannot reach the Hugging Face hub") ||
		!strings.Contains(err.Error(), "config.json, model.safetensors") {
		t.Fatalf("got %v", err)
	}
}

func TestOptionalAndRequiredMissing(t *testing.T) {
	h, _ := setup(t)
	res, err := Resolve(repoID, []string{"config.json"}, []string{"vocab.json", "merges.txt"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 {
		t.Errorf("files: %v", res.Files)
	}
	_, err = Resolve(repoID, []string{"config.json", "pytorch_model.bin"}, nil, nil)
	want := fmt.Sprintf(`model "org/tiny" has no file "pytorch_model.bin" at revision "main" (HTTP 404 from %s/org/tiny/resolve/%s/pytorch_model.bin)`,
		h.URL, h.Commit(repoID))
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Error("not ErrNotFound")
	}
	// The very first request of a resolve uses the revision name.
	_, err = Resolve(repoID, []string{"nope.json"}, nil, nil)
	want = fmt.Sprintf(`model "org/tiny" has no file "nope.json" at revision "main" (HTTP 404 from %s/org/tiny/resolve/main/nope.json)`, h.URL)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestRepoAndRevisionNotFound(t *testing.T) {
	setup(t)
	_, err := Resolve("org/none", nil, []string{"config.json"}, nil)
	if err == nil || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `model "org/none" was not found`) ||
		!strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("got %v", err)
	}
	_, err = Resolve(repoID+"@v9", required, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `model "org/tiny" has no revision "v9" (HTTP 404`) {
		t.Fatalf("got %v", err)
	}
	_, err = Resolve(repoID+"@v9", required, nil, &Options{Revision: "main"})
	if err == nil || !strings.Contains(err.Error(), "Options.Revision") {
		t.Fatalf("got %v", err)
	}
}

func TestGated(t *testing.T) {
	setup(t)
	_, err := Resolve("org/gated", []string{"config.json"}, nil, nil)
	if err == nil || !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "gated") ||
		!strings.Contains(err.Error(), "HF_TOKEN") || !strings.Contains(err.Error(), "HTTP 401 from") {
		t.Fatalf("got %v", err)
	}
	_, err = Resolve("org/gated", []string{"config.json"}, nil, &Options{Token: "wrong"})
	if err == nil || !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "HTTP 403 from") {
		t.Fatalf("got %v", err)
	}
	t.Setenv("HF_TOKEN", "secret-token")
	if _, err := Resolve("org/gated", []string{"config.json"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The login token file is used when HF_TOKEN is not set.
	t.Setenv("HF_TOKEN", "")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_TOKEN_PATH", tokenFile)
	if _, err := Resolve("org/gated", []string{"config.json"}, nil, &Options{CacheDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
}

func TestCacheDirFromEnvironment(t *testing.T) {
	h, _ := setup(t)
	home := t.TempDir()
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", home)
	if got := CacheDir(nil); got != filepath.Join(home, "hub") {
		t.Errorf("CacheDir = %s", got)
	}
	res, err := Resolve(repoID, required, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, "hub", "models--org--tiny", "snapshots", h.Commit(repoID)); res.Dir != want {
		t.Errorf("Dir = %s, want %s", res.Dir, want)
	}
	t.Setenv("HF_HUB_CACHE", "/x/hub")
	if got := CacheDir(nil); got != "/x/hub" {
		t.Errorf("CacheDir = %s", got)
	}
	if got := CacheDir(&Options{CacheDir: "/y"}); got != "/y" {
		t.Errorf("CacheDir = %s", got)
	}
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := CacheDir(nil); got != "/xdg/huggingface/hub" {
		t.Errorf("CacheDir = %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := CacheDir(nil); got != "/home/u/.cache/huggingface/hub" {
		t.Errorf("CacheDir = %s", got)
	}
}

// populatePython writes a cache by hand exactly as Python's huggingface_hub leaves it.
func populatePython(t *testing.T, h *hubtest.Hub, cache string) string {
	t.Helper()
	repoDir := filepath.Join(cache, "models--org--tiny")
	commit := h.Commit(repoID)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(repoDir, "refs"), 0o755))
	must(os.WriteFile(filepath.Join(repoDir, "refs", "main"), []byte(commit), 0o644))
	for _, name := range []string{"config.json", "model.safetensors"} {
		content := tinyFiles()[name]
		blob := h.BlobName(name, content)
		must(os.MkdirAll(filepath.Join(repoDir, "blobs"), 0o755))
		must(os.WriteFile(filepath.Join(repoDir, "blobs", blob), content, 0o644))
		must(os.MkdirAll(filepath.Join(repoDir, "snapshots", commit), 0o755))
		must(os.Symlink("../../blobs/"+blob, filepath.Join(repoDir, "snapshots", commit, name)))
	}
	return commit
}

func TestPythonLayoutCacheIsFound(t *testing.T) {
	h, cache := setup(t)
	commit := populatePython(t, h, cache)

	t.Setenv("HF_HUB_OFFLINE", "1")
	res, err := Resolve(repoID, required, optional, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != commit || len(res.Files) != 2 {
		t.Errorf("got %+v", res)
	}
	checkFiles(t, res, tinyFiles(), required...)

	// Online: the hub confirms the commit and ETags, nothing is downloaded.
	t.Setenv("HF_HUB_OFFLINE", "0")
	res, err = Resolve(repoID, required, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Downloaded) != 0 || h.Downloads(repoID, "model.safetensors") != 0 {
		t.Errorf("downloaded %v", res.Downloaded)
	}
	// A file missing from the Python cache is downloaded next to the others.
	res, err = Resolve(repoID, required, []string{"tokenizer.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Downloaded, ",") != "tokenizer.json" {
		t.Errorf("downloaded %v", res.Downloaded)
	}
}

func TestPartlyCachedOffline(t *testing.T) {
	h, cache := setup(t)
	populatePython(t, h, cache)
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, err := Resolve(repoID, []string{"config.json", "tokenizer.json"}, nil, nil)
	if err == nil || !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "only partly in the Hugging Face cache") ||
		!strings.HasSuffix(err.Error(), "missing: tokenizer.json") {
		t.Fatalf("got %v", err)
	}
}

func TestNewCommitDownloadsOnlyChangedFiles(t *testing.T) {
	h, cache := setup(t)
	if _, err := Resolve(repoID, required, nil, nil); err != nil {
		t.Fatal(err)
	}
	files := tinyFiles()
	files["config.json"] = []byte(`{"model_type":"gpt2","n_layer":2}`)
	commit := h.SetRepo(repoID, files)
	res, err := Resolve(repoID, required, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != commit || strings.Join(res.Downloaded, ",") != "config.json" {
		t.Errorf("commit %s (want %s), downloaded %v", res.Commit, commit, res.Downloaded)
	}
	checkFiles(t, res, files, required...)
	if ref := string(readFile(t, filepath.Join(cache, "models--org--tiny", "refs", "main"))); ref != commit {
		t.Errorf("refs/main = %s", ref)
	}
}

func TestConcurrentResolves(t *testing.T) {
	h := hubtest.New(t, hubtest.Config{
		Repos:        map[string]map[string][]byte{repoID: tinyFiles()},
		ContentDelay: 50 * time.Millisecond,
	})
	cache := hubtest.SetEnv(t, h.URL)
	const n = 12
	var wg sync.WaitGroup
	results := make([]*Resolved, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = Resolve(repoID, required, optional, nil)
		})
	}
	wg.Wait()
	downloads := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		checkFiles(t, results[i], tinyFiles(), "config.json", "model.safetensors", "tokenizer.json")
		for _, d := range results[i].Downloaded {
			if d == "model.safetensors" {
				downloads++
			}
		}
	}
	if downloads != 1 || h.Downloads(repoID, "model.safetensors") != 1 {
		t.Errorf("model.safetensors downloaded %d times (%d served)", downloads, h.Downloads(repoID, "model.safetensors"))
	}
	noIncomplete(t, cache)
	blobs, _ := os.ReadDir(filepath.Join(cache, "models--org--tiny", "blobs"))
	if len(blobs) != 3 {
		t.Errorf("%d blobs, want 3", len(blobs))
	}
}

// TestConcurrentCaches simulates separate processes: each goroutine reaches the same cache
// through its own symlink, so the in-process lock does not serialize them, and the
// temp-file+rename must keep blobs and links whole.
func TestConcurrentCaches(t *testing.T) {
	h := hubtest.New(t, hubtest.Config{
		Repos:        map[string]map[string][]byte{repoID: tinyFiles()},
		ContentDelay: 50 * time.Millisecond,
	})
	cache := hubtest.SetEnv(t, h.URL)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	links := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		dir := filepath.Join(links, fmt.Sprint(i))
		if err := os.Symlink(cache, dir); err != nil {
			t.Skip("no symlinks:", err)
		}
		wg.Go(func() {
			var res *Resolved
			res, errs[i] = Resolve(repoID, required, nil, &Options{CacheDir: dir})
			if errs[i] == nil {
				b, err := os.ReadFile(res.Files["model.safetensors"])
				if err != nil || !bytes.Equal(b, tinyFiles()["model.safetensors"]) {
					errs[i] = fmt.Errorf("bad content (%v)", err)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	noIncomplete(t, cache)
	t.Logf("model.safetensors served %d times to 8 racing resolvers", h.Downloads(repoID, "model.safetensors"))
}

func TestProgress(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1500000/16)
	h := hubtest.NewServer(t, map[string]map[string][]byte{"org/big": {"model.safetensors": big, "config.json": []byte("{}")}})
	hubtest.SetEnv(t, h.URL)
	t.Setenv("HF_HUB_DISABLE_PROGRESS_BARS", "")
	var buf bytes.Buffer
	if _, err := Resolve("org/big", []string{"config.json", "model.safetensors"}, nil, &Options{Progress: &buf}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("progress: %q", out)
	if !strings.Contains(out, "Downloading model.safetensors") || !strings.Contains(out, "1.5 MB / 1.5 MB") ||
		!strings.Contains(out, "100%") || !strings.HasSuffix(out, "\n") || strings.Contains(out, "config.json") {
		t.Errorf("progress output %q", out)
	}
	// Quiet silences it.
	buf.Reset()
	if _, err := Resolve("org/big", []string{"model.safetensors"}, nil, &Options{Progress: &buf, Quiet: true, CacheDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("quiet output %q", buf.String())
	}
}

func TestLocalDir(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"config.json", "vocab.json"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !IsLocalDir(dir) || IsLocalDir(filepath.Join(dir, "config.json")) || IsLocalDir("org/tiny") {
		t.Error("IsLocalDir")
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	res, err := Resolve(dir, []string{"config.json"}, []string{"tokenizer.json", "vocab.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Local || res.Dir != dir || len(res.Files) != 2 || res.Files["vocab.json"] != filepath.Join(dir, "vocab.json") {
		t.Errorf("got %+v", res)
	}
	_, err = Resolve(dir, []string{"config.json", "model.safetensors"}, nil, nil)
	if err == nil || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `has no file "model.safetensors"`) {
		t.Errorf("got %v", err)
	}
	for _, p := range []string{"./foo", "/abs/not/there", "../x", "a/b/c", "~/nope-dir-xyz"} {
		_, err := Resolve(p, []string{"config.json"}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("model directory %q does not exist", p)) {
			t.Errorf("%s: got %v", p, err)
		}
	}
	_, err = Resolve(filepath.Join(dir, "config.json"), []string{"config.json"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("got %v", err)
	}
}

func TestBadNames(t *testing.T) {
	for _, n := range []string{"", "/etc/passwd", "../x", "a/../../b", `a\b`, "./a"} {
		if _, err := Resolve(t.TempDir(), []string{n}, nil, nil); err == nil || !strings.Contains(err.Error(), "invalid file name") {
			t.Errorf("%q: got %v", n, err)
		}
	}
	for _, id := range []string{"org/na--me", "org/..", "a/b/c"} {
		if _, _, err := parseID(id, ""); err == nil {
			t.Errorf("%q accepted", id)
		}
	}
	for _, c := range []struct{ in, id, rev string }{
		{"gpt2", "gpt2", "main"},
		{"openai-community/gpt2", "openai-community/gpt2", "main"},
		{"org/m.v1_2@refs/pr/3", "org/m.v1_2", "refs/pr/3"},
	} {
		id, rev, err := parseID(c.in, "")
		if err != nil || id != c.id || rev != c.rev {
			t.Errorf("%q: %q %q %v", c.in, id, rev, err)
		}
	}
}

func TestNormalizeETag(t *testing.T) {
	for in, want := range map[string]string{`"abc"`: "abc", `W/"abc"`: "abc", "abc": "abc", ` "abc" `: "abc"} {
		if got := normalizeETag(in); got != want {
			t.Errorf("%q → %q", in, got)
		}
	}
}

func TestFileURLEscaping(t *testing.T) {
	c := &repoClient{id: "org/m", endpoint: "https://hf.example"}
	if got := c.fileURL("refs/pr/1", "sub dir/a b.json"); got != "https://hf.example/org/m/resolve/refs%2Fpr%2F1/sub%20dir/a%20b.json" {
		t.Error(got)
	}
}

// A renamed repo answers with a relative redirect, which is followed (huggingface_hub does too).
func TestRelativeRedirectFollowed(t *testing.T) {
	h, _ := setup(t)
	inner := h.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/old/tiny/"); ok {
			http.Redirect(w, r, "/org/tiny/"+rest, http.StatusTemporaryRedirect)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("HF_ENDPOINT", srv.URL)
	res, err := Resolve("old/tiny", required, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != h.Commit(repoID) || !strings.Contains(res.Dir, "models--old--tiny") {
		t.Errorf("got %+v", res)
	}
	checkFiles(t, res, tinyFiles(), required...)
}
