package hub

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gonnsight/gonnsight/internal/fsx"
)

// repoClient resolves files of one repo at one revision.
type repoClient struct {
	id, revision string
	cache        string // cache root
	repoDir      string // cache/models--org--name
	endpoint     string
	token        string
	offline      bool
	offlineWhy   string // what set offline, for messages
	progress     io.Writer

	// commit is the commit hash of the revision once known; later requests are pinned to it
	// so that all files come from the same snapshot.
	commit string
	// fallbackErr is set once the hub failed (unreachable, 5xx, 401…): the remaining files
	// are taken from the cache only, as huggingface_hub does.
	fallbackErr error
}

func newRepoClient(id, rev string, opts *Options) *repoClient {
	c := &repoClient{id: id, revision: rev, cache: CacheDir(opts)}
	if abs, err := filepath.Abs(c.cache); err == nil {
		c.cache = abs
	}
	c.repoDir = filepath.Join(c.cache, repoFolder(id))
	c.endpoint = opts.Endpoint
	if c.endpoint == "" {
		c.endpoint = os.Getenv("HF_ENDPOINT")
	}
	if c.endpoint == "" {
		c.endpoint = DefaultEndpoint
	}
	c.endpoint = strings.TrimRight(c.endpoint, "/")
	if opts.Offline != nil {
		c.offline, c.offlineWhy = *opts.Offline, "Options.Offline is set"
	} else {
		c.offline, c.offlineWhy = envTrue("HF_HUB_OFFLINE"), "HF_HUB_OFFLINE is set"
	}
	c.token = opts.Token
	if c.token == "" && !c.offline {
		c.token = envToken()
	}
	if !opts.Quiet && !envTrue("HF_HUB_DISABLE_PROGRESS_BARS") {
		if opts.Progress != nil {
			c.progress = opts.Progress
		} else if stderrIsTerminal() {
			c.progress = os.Stderr
		}
	}
	return c
}

// envToken is HF_TOKEN, HUGGING_FACE_HUB_TOKEN, or the token file of `hf auth login`.
func envToken() string {
	for _, v := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := strings.TrimSpace(os.Getenv(v)); t != "" {
			return t
		}
	}
	p := os.Getenv("HF_TOKEN_PATH")
	if p == "" {
		p = filepath.Join(hfHome(), "token")
	}
	if b, err := os.ReadFile(expandHome(p)); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

func stderrIsTerminal() bool {
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

func (c *repoClient) modelName() string {
	if c.revision == "main" {
		return fmt.Sprintf("model %q", c.id)
	}
	return fmt.Sprintf("model %q at revision %q", c.id, c.revision)
}

func (c *repoClient) snapshotDir(commit string) string {
	return filepath.Join(c.repoDir, "snapshots", commit)
}

func (c *repoClient) snapshotPath(commit, name string) string {
	return filepath.Join(c.snapshotDir(commit), filepath.FromSlash(name))
}

// cachedFile returns the snapshot path of name at commit if it exists (a symlink must reach its blob).
func (c *repoClient) cachedFile(commit, name string) string {
	p := c.snapshotPath(commit, name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p
	}
	return ""
}

// cachedCommit is the commit of the revision according to the cache: the revision itself when
// it is a commit hash with a snapshot, else the content of refs/{revision}; "" if unknown.
func (c *repoClient) cachedCommit() string {
	if commitHashRE.MatchString(c.revision) {
		if st, err := os.Stat(c.snapshotDir(c.revision)); err == nil && st.IsDir() {
			return c.revision
		}
	}
	b, err := os.ReadFile(filepath.Join(c.repoDir, "refs", filepath.FromSlash(c.revision)))
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(b))
	if commit == "" || strings.ContainsAny(commit, `/\`) || commit == "." || commit == ".." {
		return ""
	}
	return commit
}

func (c *repoClient) resolve(names []string, isRequired map[string]bool) (*Resolved, error) {
	res := &Resolved{Files: map[string]string{}}
	var notCached []string // required files neither on the hub (reachable) nor in the cache
	if c.offline {
		c.commit = c.cachedCommit()
	}
	for _, name := range names {
		p, downloaded, err := c.file(name)
		switch {
		case err == nil:
			res.Files[name] = p
			if downloaded {
				res.Downloaded = append(res.Downloaded, name)
			}
		case errors.Is(err, ErrNotCached):
			if isRequired[name] {
				notCached = append(notCached, name)
			}
		case !isRequired[name] && isMissingFile(err):
			// Optional file that the model does not have.
		default:
			return nil, err
		}
	}
	if len(notCached) > 0 {
		return nil, c.notCachedError(names, notCached, isRequired, res)
	}
	res.Commit = c.commit
	if c.commit != "" {
		res.Dir = c.snapshotDir(c.commit)
	}
	return res, nil
}

func isMissingFile(err error) bool {
	var he *hubError
	return errors.As(err, &he) && he.missingFile
}

// file returns the local path of name, and whether it was downloaded now.
func (c *repoClient) file(name string) (string, bool, error) {
	if c.offline {
		return c.fromCache(name)
	}
	// A commit hash whose file is in the cache needs no request: its content cannot change.
	if commitHashRE.MatchString(c.revision) {
		if p := c.cachedFile(c.revision, name); p != "" {
			c.commit = c.revision
			return p, false, nil
		}
	}
	if c.fallbackErr != nil {
		return c.fromCache(name)
	}
	meta, err := c.head(name)
	if err != nil {
		var he *hubError
		if errors.As(err, &he) && (he.missingFile || he.kind == ErrNotFound && he.cause == errRevisionNotFound) {
			return "", false, err
		}
		// Unreachable hub, server error, access refused, unknown repo: use the cache if it has
		// the file, like huggingface_hub; otherwise report this error.
		c.fallbackErr = err
		if c.commit == "" {
			c.commit = c.cachedCommit()
		}
		if c.commit != "" {
			if p := c.cachedFile(c.commit, name); p != "" {
				return p, false, nil
			}
		}
		if errors.As(err, &he) {
			return "", false, err // a definite answer from the hub (e.g. gated): not a cache matter
		}
		return "", false, &hubError{kind: ErrNotCached, cause: err}
	}
	if c.commit == "" {
		c.commit = meta.commit
		if c.revision != meta.commit {
			if err := c.writeRef(meta.commit); err != nil {
				return "", false, err
			}
		}
	}
	snap := c.snapshotPath(meta.commit, name)
	if st, err := os.Stat(snap); err == nil && !st.IsDir() {
		return snap, false, nil
	}
	blob := filepath.Join(c.repoDir, "blobs", meta.etag)
	downloaded, err := c.ensureBlob(blob, name, meta)
	if err != nil {
		return "", false, err
	}
	if err := linkSnapshot(snap, blob); err != nil {
		return "", false, fmt.Errorf("hub: while adding %q of %s to the cache: %w", name, c.modelName(), err)
	}
	return snap, downloaded, nil
}

// fromCache finds name in the cache only (offline, or after the hub failed).
func (c *repoClient) fromCache(name string) (string, bool, error) {
	if c.commit == "" {
		c.commit = c.cachedCommit()
	}
	if c.commit != "" {
		if p := c.cachedFile(c.commit, name); p != "" {
			return p, false, nil
		}
	}
	return "", false, &hubError{kind: ErrNotCached, cause: c.fallbackErr}
}

// notCachedError explains which required files could not be found without the hub.
func (c *repoClient) notCachedError(names, missing []string, isRequired map[string]bool, res *Resolved) error {
	var required []string
	for _, n := range names {
		if isRequired[n] {
			required = append(required, n)
		}
	}
	someCached := len(res.Files) > 0
	var msg string
	if c.offline {
		if !someCached {
			msg = fmt.Sprintf("%s is not in the Hugging Face cache at %s and %s; files looked for: %s",
				c.modelName(), c.cache, c.offlineWhy, strings.Join(required, ", "))
		} else {
			msg = fmt.Sprintf("%s is only partly in the Hugging Face cache at %s and %s; missing: %s",
				c.modelName(), c.cache, c.offlineWhy, strings.Join(missing, ", "))
		}
		return &hubError{kind: ErrNotCached, msg: msg}
	}
	var he *hubError
	if errors.As(c.fallbackErr, &he) {
		return he // the hub answered (e.g. access denied) and the cache lacks files
	}
	msg = fmt.Sprintf("cannot reach the Hugging Face hub at %s (%v), and %s is not in the Hugging Face cache at %s; missing: %s",
		c.endpoint, c.fallbackErr, c.modelName(), c.cache, strings.Join(missing, ", "))
	return &hubError{kind: ErrNotCached, msg: msg, cause: c.fallbackErr}
}

// writeRef records commit as the commit of c.revision in refs/{revision}, atomically.
func (c *repoClient) writeRef(commit string) error {
	ref := filepath.Join(c.repoDir, "refs", filepath.FromSlash(c.revision))
	if b, err := os.ReadFile(ref); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
		return fmt.Errorf("hub: cannot create the cache: %w", err)
	}
	if err := writeFileAtomic(ref, []byte(commit)); err != nil {
		return fmt.Errorf("hub: cannot write %s: %w", ref, err)
	}
	return nil
}

// writeNoExist records, like huggingface_hub, that name does not exist at commit.
func (c *repoClient) writeNoExist(commit, name string) {
	if !commitHashRE.MatchString(commit) {
		return
	}
	p := filepath.Join(c.repoDir, ".no_exist", commit, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_ = f.Close()
		}
	}
}

func writeFileAtomic(p string, data []byte) error {
	fsx.SweepTemps(filepath.Dir(p))
	return fsx.WriteFileAtomic(p, data, 0o644)
}
