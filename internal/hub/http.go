package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonnsight/gonnsight/internal/fsx"
)

var (
	transport = func() *http.Transport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.ResponseHeaderTimeout = 60 * time.Second
		return t
	}()
	// headClient does not follow redirects: the hub's 302 to its CDN carries the metadata.
	headClient = &http.Client{Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// getClient follows redirects; Go drops the Authorization header when they leave the host.
	getClient = &http.Client{Transport: transport}

	userAgent = "gonnsight-hub/1; go/" + runtime.Version()

	errRevisionNotFound = errors.New("revision not found")
	sha256RE            = regexp.MustCompile(`^[0-9a-f]{64}$`)
	gitSHA1RE           = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

func envSeconds(name string, def time.Duration) time.Duration {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return time.Duration(v * float64(time.Second))
	}
	return def
}

// fileURL is {endpoint}/{id}/resolve/{revision}/{name}, escaped like huggingface_hub's hf_hub_url.
func (c *repoClient) fileURL(rev, name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.endpoint + "/" + c.id + "/resolve/" + url.PathEscape(rev) + "/" + strings.Join(segs, "/")
}

func (c *repoClient) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	if c.token != "" && sameHost(u, c.endpoint) {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && strings.EqualFold(ua.Host, ub.Host)
}

// fileMeta is what a HEAD on the resolve URL tells about a file.
type fileMeta struct {
	commit      string // X-Repo-Commit
	etag        string // X-Linked-Etag or ETag, normalized: the blob name
	size        int64  // X-Linked-Size or Content-Length; -1 if unknown
	downloadURL string // where to GET the content (the CDN location for LFS files)
}

// normalizeETag strips a weak-validator prefix and the quotes: W/"abc" → abc.
func normalizeETag(e string) string {
	e = strings.TrimSpace(e)
	e = strings.TrimPrefix(e, "W/")
	return strings.Trim(e, `"`)
}

// head asks the hub for the metadata of name, as huggingface_hub's get_hf_file_metadata:
// relative redirects (renamed repos) are followed, an absolute one (to the CDN) is not and
// its own headers carry X-Repo-Commit, X-Linked-Etag and X-Linked-Size.
func (c *repoClient) head(name string) (*fileMeta, error) {
	rev := c.revision
	if c.commit != "" {
		rev = c.commit
	}
	u := c.fileURL(rev, name)
	ctx, cancel := context.WithTimeout(context.Background(), envSeconds("HF_HUB_ETAG_TIMEOUT", 10*time.Second))
	defer cancel()
	var redirectMeta *http.Response // a relative redirect that carried the metadata itself
	for hops := 0; ; hops++ {
		if hops > 10 {
			return nil, fmt.Errorf("too many redirects from %s", c.fileURL(rev, name))
		}
		req, err := c.newRequest(ctx, http.MethodHead, u)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := headClient.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		_ = resp.Body.Close()

		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc := resp.Header.Get("Location")
			if loc == "" {
				return nil, c.statusError(resp, name, u)
			}
			next, err := resp.Request.URL.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("bad redirect %q from %s: %w", loc, u, err)
			}
			lu, _ := url.Parse(loc)
			absolute := lu != nil && lu.Host != ""
			hasMeta := resp.Header.Get("X-Repo-Commit") != "" && resp.Header.Get("X-Linked-Etag") != ""
			if absolute && resp.Header.Get("X-Repo-Commit") != "" {
				return c.metaFrom(resp, name, u, next.String())
			}
			if hasMeta {
				redirectMeta = resp
			}
			u = next.String()
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return nil, c.statusError(resp, name, u)
		}
		if resp.Header.Get("X-Repo-Commit") == "" && redirectMeta != nil {
			// Some mirrors redirect to their own storage with a relative URL.
			return c.metaFrom(redirectMeta, name, u, u)
		}
		return c.metaFrom(resp, name, u, u)
	}
}

func (c *repoClient) metaFrom(resp *http.Response, name, u, downloadURL string) (*fileMeta, error) {
	m := &fileMeta{
		commit:      strings.TrimSpace(resp.Header.Get("X-Repo-Commit")),
		etag:        normalizeETag(resp.Header.Get("X-Linked-Etag")),
		size:        -1,
		downloadURL: downloadURL,
	}
	if m.etag == "" {
		m.etag = normalizeETag(resp.Header.Get("ETag"))
	}
	if n, err := strconv.ParseInt(resp.Header.Get("X-Linked-Size"), 10, 64); err == nil {
		m.size = n
	} else if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 {
		m.size = resp.ContentLength
	}
	bad := func(what string) error {
		return &hubError{kind: ErrNotFound, msg: fmt.Sprintf(
			"the hub at %s answered for %q of %s without %s (from %s): is HF_ENDPOINT a Hugging Face hub?",
			c.endpoint, name, c.modelName(), what, u)}
	}
	if m.commit == "" || strings.ContainsAny(m.commit, `/\`) || m.commit == "." || m.commit == ".." {
		return nil, bad("a valid X-Repo-Commit header")
	}
	if m.etag == "" || strings.ContainsAny(m.etag, `/\`) || m.etag == "." || m.etag == ".." {
		return nil, bad("a valid ETag header")
	}
	return m, nil
}

// statusError turns an HTTP error status from the hub into a clear error.
func (c *repoClient) statusError(resp *http.Response, name, u string) error {
	code := resp.StatusCode
	errCode := resp.Header.Get("X-Error-Code")
	status := fmt.Sprintf("HTTP %d from %s", code, u)
	tokenHint := "set HF_TOKEN to a Hugging Face token that has access"
	if c.token != "" {
		tokenHint = "the Hugging Face token in use (Options.Token, HF_TOKEN or the login token file) was not accepted: check that it has access"
	}
	switch {
	case code == http.StatusNotFound && errCode == "RevisionNotFound":
		return &hubError{kind: ErrNotFound, cause: errRevisionNotFound,
			msg: fmt.Sprintf("model %q has no revision %q (%s)", c.id, c.revision, status)}
	case errCode == "RepositoryNotFound":
		return &hubError{kind: ErrNotFound, msg: fmt.Sprintf(
			"model %q was not found on the Hugging Face hub at %s; if it is private or gated, %s (%s)",
			c.id, c.endpoint, tokenHint, status)}
	case code == http.StatusNotFound:
		if commit := resp.Header.Get("X-Repo-Commit"); commit != "" {
			c.writeNoExist(commit, name)
		}
		return &hubError{kind: ErrNotFound, missingFile: true,
			msg: fmt.Sprintf("model %q has no file %q at revision %q (%s)", c.id, name, c.revision, status)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		what := "is gated or private"
		if errCode == "GatedRepo" {
			what = "is gated (accept its conditions at " + c.endpoint + "/" + c.id + ")"
		}
		return &hubError{kind: ErrAccessDenied, msg: fmt.Sprintf(
			"model %q %s and access was denied: %s (%s)", c.id, what, tokenHint, status)}
	}
	msg := strings.TrimSpace(resp.Header.Get("X-Error-Message"))
	if msg != "" {
		msg = ": " + msg
	}
	return fmt.Errorf("the Hugging Face hub answered HTTP %d for %s%s", code, u, msg)
}

// blobLocks serializes, within this process, downloads of the same blob.
var blobLocks sync.Map // blob path → *sync.Mutex

// ensureBlob downloads the blob if it is not in the cache; it returns whether it downloaded it.
func (c *repoClient) ensureBlob(blob, name string, meta *fileMeta) (bool, error) {
	mu, _ := blobLocks.LoadOrStore(blob, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if st, err := os.Stat(blob); err == nil && st.Mode().IsRegular() {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return false, fmt.Errorf("hub: cannot create the cache: %w", err)
	}
	fsx.SweepTemps(filepath.Dir(blob)) // partial downloads of killed processes
	if err := c.download(blob, name, meta); err != nil {
		return false, err
	}
	return true, nil
}

// download GETs the content into a temporary file next to blob, checks its size (and its
// sha256 when the blob name is one), then renames it to blob: readers, and concurrent
// downloaders in other processes, never see a partial blob.
func (c *repoClient) download(blob, name string, meta *fileMeta) (err error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("hub: downloading %q of %s: %s", name, c.modelName(), fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodGet, meta.downloadURL)
	if err != nil {
		return fail("%v", err)
	}
	req.Header.Set("Accept-Encoding", "identity") // sizes and hashes are those of the stored bytes
	resp, err := getClient.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		if resp.Request.URL.Host == req.URL.Host && sameHost(meta.downloadURL, c.endpoint) {
			return c.statusError(resp, name, meta.downloadURL)
		}
		return fail("HTTP %d from %s", resp.StatusCode, resp.Request.URL.Redacted())
	}
	total := meta.size
	if total < 0 {
		total = resp.ContentLength
	}
	if err := checkVerifiable(meta); err != nil {
		return fail("%v", err)
	}

	// BLOB.incomplete-PID-RANDOM: fsx.SweepTemps removes it if this process is killed.
	f, err := os.OpenFile(blob+".incomplete-"+strconv.Itoa(os.Getpid())+"-"+randomSuffix(), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail("%v", err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()

	// Stall timeout: cancel the request if no byte arrives for a while.
	stall := envSeconds("HF_HUB_DOWNLOAD_TIMEOUT", 60*time.Second)
	timer := time.AfterFunc(stall, cancel)
	defer timer.Stop()

	var hasher hash.Hash
	writers := []io.Writer{f}
	if sha256RE.MatchString(meta.etag) {
		hasher = sha256.New()
		writers = append(writers, hasher)
	}
	// Never read past the announced size: a lying server must not fill the disk. Without an
	// announced size, a bound by kind (the hub keeps files of 10 MiB and more in LFS).
	limit := total
	if limit < 0 {
		limit = maxUnannouncedLFS
		if hasher == nil {
			limit = maxUnannouncedSmall
		}
	}
	body := io.LimitReader(resp.Body, limit+1)
	var bar *progressBar
	if c.progress != nil && (total < 0 || total > 1<<20) {
		bar = newProgressBar(c.progress, name, total)
		writers = append(writers, bar)
	}
	n, err := io.Copy(io.MultiWriter(writers...), &stallReader{r: body, timer: timer, d: stall})
	if bar != nil {
		bar.finish(err == nil)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fail("no data received for %v (HF_HUB_DOWNLOAD_TIMEOUT)", stall)
		}
		return fail("%v", err)
	}
	if total >= 0 && n > total {
		return fail("the server sent more than the %d bytes it announced; stopped there, nothing kept", total)
	}
	if total < 0 && n > limit {
		return fail("the server announced no size and sent more than %d bytes, the most gonnsight takes for such a file; stopped there, nothing kept", limit)
	}
	if total >= 0 && n != total {
		return fail("got %d bytes, expected %d (the download was cut short); nothing kept", n, total)
	}
	if hasher != nil {
		if got := hex.EncodeToString(hasher.Sum(nil)); got != meta.etag {
			return fail("content has sha256 %s, the hub announced %s; nothing kept", got, meta.etag)
		}
	} else if gitSHA1RE.MatchString(meta.etag) {
		got, herr := gitBlobSHA1(f, n)
		if herr != nil {
			return fail("%v", herr)
		}
		if got != meta.etag {
			return fail("content (%d bytes) has git blob sha1 %s, the hub announced %s (cut short or altered); nothing kept", n, got, meta.etag)
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fail("%v", err)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return fail("%v", err)
	}
	if err = os.Rename(tmp, blob); err != nil {
		return fail("%v", err)
	}
	return nil
}

// Bounds on a download whose size the server did not announce: a small (git) file, and an
// LFS file (variables for tests).
var (
	maxUnannouncedSmall int64 = 512 << 20
	maxUnannouncedLFS   int64 = 64 << 30
)

// checkVerifiable refuses a file whose ETag is no hash that can be checked: a sha256 (LFS
// files) or a git blob sha1 (small files) is what the Hugging Face hub announces.
func checkVerifiable(m *fileMeta) error {
	if sha256RE.MatchString(m.etag) || gitSHA1RE.MatchString(m.etag) {
		return nil
	}
	return fmt.Errorf("the hub announced ETag %q, which is neither a sha256 (LFS files) nor a git blob sha1 (other files): "+
		"the content cannot be verified, so it is not cached", m.etag)
}

// gitBlobSHA1 hashes the n bytes of f as git does a blob: sha1("blob N\x00" + content).
func gitBlobSHA1(f *os.File, n int64) (string, error) {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", n)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type stallReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	return n, err
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// linkSnapshot makes snap a relative symlink to blob (../../blobs/{etag}), replacing it
// atomically; where symlinks are not allowed, it hard-links or copies the blob instead.
func linkSnapshot(snap, blob string) error {
	dir := filepath.Dir(snap)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	target, err := filepath.Rel(dir, blob)
	if err != nil {
		target = blob
	}
	tmp := fsx.TempName(snap)
	if err := os.Symlink(target, tmp); err != nil {
		if err := os.Link(blob, tmp); err != nil {
			if err := copyFile(blob, tmp); err != nil {
				_ = os.Remove(tmp)
				return err
			}
		}
	}
	if err := os.Rename(tmp, snap); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
