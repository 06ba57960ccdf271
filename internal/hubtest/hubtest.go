// Package hubtest serves models over real HTTP the way the Hugging Face hub does,
// so tests can exercise downloads (package hub and its users) without the internet.
//
// The server implements GET and HEAD on {id}/resolve/{revision}/{filename} like
// huggingface.co: X-Repo-Commit and ETag headers, LFS-like files (weights) answered
// with a 302 to a CDN-like URL carrying X-Linked-Etag (sha256) and X-Linked-Size,
// 404 with X-Error-Code EntryNotFound / RevisionNotFound, 401 RepositoryNotFound for
// unknown repos, and 401/403 GatedRepo for gated repos without the right token.
// The revision may be "main" or the repo's commit hash.
package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config describes what a Hub serves.
type Config struct {
	// Repos maps a repo id ("org/name") to its files (name → content).
	Repos map[string]map[string][]byte
	// Gated maps a repo id to the only token that may read it; requests with no
	// token get 401, with another token 403 (X-Error-Code: GatedRepo).
	Gated map[string]string
	// LFS reports whether a file is stored in LFS, i.e. answered with a 302 to the CDN.
	// Nil means IsLFS.
	LFS func(name string, size int) bool
	// ContentDelay is waited before sending any file content (GET), to widen race windows in tests.
	ContentDelay time.Duration
	// Tamper, when set, makes the server lie about files for which it returns a non-nil
	// body: GET sends body instead of the content and neither GET nor HEAD sends a
	// Content-Length (the headers that name the blob stay those of the true content).
	Tamper func(name string, content []byte) io.Reader
}

// Hub is a running fake hub. Its embedded server's URL is the HF_ENDPOINT to use.
type Hub struct {
	*httptest.Server

	mu        sync.Mutex
	repos     map[string]*repo
	gated     map[string]string
	lfs       func(string, int) bool
	delay     time.Duration
	tamper    func(string, []byte) io.Reader
	sent      map[string]int64
	requests  []string
	downloads map[string]int
}

type repo struct {
	files  map[string][]byte
	commit string
}

// NewServer starts a fake hub serving repos (repo id → filename → content).
// It is closed by t.Cleanup; t may be nil, and then the caller must Close it.
func NewServer(t testing.TB, repos map[string]map[string][]byte) *httptest.Server {
	return New(t, Config{Repos: repos}).Server
}

// New starts a fake hub with the given configuration, closed by t.Cleanup (t may be nil).
func New(t testing.TB, cfg Config) *Hub {
	h := &Hub{
		repos:     map[string]*repo{},
		gated:     map[string]string{},
		lfs:       cfg.LFS,
		delay:     cfg.ContentDelay,
		tamper:    cfg.Tamper,
		sent:      map[string]int64{},
		downloads: map[string]int{},
	}
	if h.lfs == nil {
		h.lfs = IsLFS
	}
	for id, files := range cfg.Repos {
		h.SetRepo(id, files)
	}
	for id, tok := range cfg.Gated {
		h.gated[id] = tok
	}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	if t != nil {
		t.Cleanup(h.Server.Close)
	}
	return h
}

// SetRepo creates or replaces a repo (as a new commit) and returns its commit hash.
func (h *Hub) SetRepo(id string, files map[string][]byte) string {
	cp := make(map[string][]byte, len(files))
	for k, v := range files {
		cp[k] = v
	}
	c := Commit(cp)
	h.mu.Lock()
	h.repos[id] = &repo{files: cp, commit: c}
	h.mu.Unlock()
	return c
}

// Commit returns the commit hash currently served for repo id ("" if unknown).
func (h *Hub) Commit(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.repos[id]; r != nil {
		return r.commit
	}
	return ""
}

// Downloads returns how many times the content of file in repo id was sent (GET with a body).
func (h *Hub) Downloads(id, file string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.downloads[id+"/"+file]
}

// Sent returns how many bytes of file in repo id the server managed to send in all.
func (h *Hub) Sent(id, file string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sent[id+"/"+file]
}

// Requests returns every request received so far, as "METHOD /path".
func (h *Hub) Requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.requests...)
}

// Commit computes the deterministic fake commit hash (40 hex digits) of a set of files.
func Commit(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	s := sha1.New()
	for _, n := range names {
		fmt.Fprintf(s, "%s\x00%d\x00", n, len(files[n]))
		s.Write(files[n])
	}
	return hex.EncodeToString(s.Sum(nil))
}

// GitBlobSHA1 is the ETag the hub gives a regular (non-LFS) file: its git blob hash.
func GitBlobSHA1(content []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(content))
	s.Write(content)
	return hex.EncodeToString(s.Sum(nil))
}

// SHA256 is the ETag (X-Linked-Etag) the hub gives an LFS file.
func SHA256(content []byte) string {
	s := sha256.Sum256(content)
	return hex.EncodeToString(s[:])
}

// IsLFS is the default rule for which files are served as LFS files (302 to the CDN):
// weight-like extensions, or anything of 10 MiB or more.
func IsLFS(name string, size int) bool {
	switch path.Ext(name) {
	case ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".gguf", ".h5", ".msgpack", ".npz", ".tflite":
		return true
	}
	return size >= 10<<20
}

// BlobName returns the blob name (ETag) the hub gives name with content, as huggingface_hub stores it in blobs/.
func (h *Hub) BlobName(name string, content []byte) string {
	if h.lfs(name, len(content)) {
		return SHA256(content)
	}
	return GitBlobSHA1(content)
}

// SetEnv points the Hugging Face environment variables of the current test at the
// server at endpoint, with a fresh empty cache, online and without a token; it
// returns the cache directory (HF_HUB_CACHE).
func SetEnv(t testing.TB, endpoint string) string {
	home := t.TempDir()
	cache := filepath.Join(home, "hub")
	t.Setenv("HF_ENDPOINT", endpoint)
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
	return cache
}

func hubError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("X-Error-Code", errCode)
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{%q:%q}\n", "error", msg)
}

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, r.Method+" "+r.URL.RequestURI())
	h.mu.Unlock()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/cdn/") {
		h.serveCDN(w, r)
		return
	}
	ep := r.URL.EscapedPath()
	i := strings.Index(ep, "/resolve/")
	if i <= 0 {
		hubError(w, http.StatusNotFound, "NotFound", "not implemented by hubtest: "+r.URL.Path)
		return
	}
	id, err := url.PathUnescape(strings.TrimPrefix(ep[:i], "/"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rest := ep[i+len("/resolve/"):]
	j := strings.Index(rest, "/")
	if j <= 0 {
		hubError(w, http.StatusNotFound, "EntryNotFound", "no file name")
		return
	}
	rev, err1 := url.PathUnescape(rest[:j])
	name, err2 := url.PathUnescape(rest[j+1:])
	if err1 != nil || err2 != nil {
		http.Error(w, "bad escaping", http.StatusBadRequest)
		return
	}

	h.mu.Lock()
	rp := h.repos[id]
	token, gated := h.gated[id]
	var content []byte
	var ok bool
	var commit string
	if rp != nil {
		content, ok = rp.files[name]
		commit = rp.commit
	}
	h.mu.Unlock()

	if rp == nil {
		hubError(w, http.StatusUnauthorized, "RepositoryNotFound", "Repository not found")
		return
	}
	if gated {
		auth := r.Header.Get("Authorization")
		switch {
		case auth == "":
			hubError(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+id+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
			return
		case auth != "Bearer "+token:
			hubError(w, http.StatusForbidden, "GatedRepo", "Access to model "+id+" is restricted and you are not in the authorized list.")
			return
		}
	}
	if rev != "main" && rev != commit {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if !ok {
		hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	if h.lfs(name, len(content)) {
		sum := SHA256(content)
		q := url.Values{"repo": {id}, "file": {name}}
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(content)))
		w.Header().Set("ETag", `"`+sum+`"`)
		w.Header().Set("Location", "http://"+r.Host+"/cdn/"+sum+"?"+q.Encode())
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+GitBlobSHA1(content)+`"`)
	h.sendContent(w, r, id, name, content)
}

func (h *Hub) sendContent(w http.ResponseWriter, r *http.Request, id, name string, content []byte) {
	var body io.Reader
	if h.tamper != nil {
		body = h.tamper(name, content)
	}
	if body == nil {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		body = bytes.NewReader(content)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		time.Sleep(h.delay)
		h.mu.Lock()
		h.downloads[id+"/"+name]++
		h.mu.Unlock()
		if f, ok := w.(http.Flusher); ok {
			f.Flush() // no Content-Length: chunked
		}
		n, _ := io.Copy(w, body)
		h.mu.Lock()
		h.sent[id+"/"+name] += n
		h.mu.Unlock()
	}
}

// serveCDN answers /cdn/{sha256}?repo=..&file=.. with the content, with the CDN's own ETag
// (deliberately not the blob name, as a real CDN may do).
func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	sum := strings.TrimPrefix(r.URL.Path, "/cdn/")
	id, name := r.URL.Query().Get("repo"), r.URL.Query().Get("file")
	h.mu.Lock()
	var content []byte
	ok := false
	if rp := h.repos[id]; rp != nil {
		content, ok = rp.files[name]
	}
	h.mu.Unlock()
	if !ok || SHA256(content) != sum {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	w.Header().Set("ETag", `"cdn-`+sum[:16]+`"`)
	h.sendContent(w, r, id, name, content)
}
