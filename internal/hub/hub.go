// Package hub resolves a model given as a local directory or a Hugging Face hub id ("org/name[@revision]") into local file paths,
// sharing huggingface_hub's cache layout (refs/, blobs/, snapshots/), downloading through HF_ENDPOINT when needed, offline when cached.
package hub

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultEndpoint is used when neither Options.Endpoint nor HF_ENDPOINT is set.
const DefaultEndpoint = "https://huggingface.co"

// Options of Resolve. The zero value (or a nil *Options) takes everything from the environment.
type Options struct {
	// Revision (branch, tag or commit hash); default "main". An "id@revision" given to Resolve sets it too.
	Revision string
	// CacheDir is the hub cache; default CacheDir(nil): HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub.
	CacheDir string
	// Endpoint of the hub; default HF_ENDPOINT, else https://huggingface.co.
	Endpoint string
	// Offline forbids any network access; nil means HF_HUB_OFFLINE (1, true, yes, on).
	Offline *bool
	// Progress receives a progress bar for downloads larger than 1 MB. When nil, stderr is
	// used if it is a terminal (and HF_HUB_DISABLE_PROGRESS_BARS is not set).
	Progress io.Writer
	// Token for gated or private repos; default HF_TOKEN, HUGGING_FACE_HUB_TOKEN, or the
	// token file written by `hf auth login` ($HF_TOKEN_PATH or $HF_HOME/token).
	Token string
	// Quiet disables any progress output, even to Progress.
	Quiet bool
}

// Resolved is the result of Resolve.
type Resolved struct {
	// Dir holds the files: the snapshot directory (cache/models--org--name/snapshots/{commit}) or the local directory.
	Dir string
	// Files maps each requested file that was found to its local path (inside Dir).
	Files map[string]string
	// Local is true when idOrDir was a local directory.
	Local bool
	// Commit is the commit hash of the snapshot ("" for a local directory).
	Commit string
	// Downloaded lists the files fetched over the network by this call (others came from the cache).
	Downloaded []string
}

// Errors that Resolve's errors match with errors.Is.
var (
	// ErrNotFound: the repo, revision or file does not exist (on the hub, or in the local directory).
	ErrNotFound = errors.New("not found")
	// ErrAccessDenied: the repo is gated or private and the token (if any) does not give access.
	ErrAccessDenied = errors.New("access denied")
	// ErrNotCached: offline (or the hub is unreachable) and the files are not in the cache.
	ErrNotCached = errors.New("not in the Hugging Face cache")
)

// hubError is an error with a complete message and a kind among the Err* values.
type hubError struct {
	msg   string
	kind  error
	cause error
	// missingFile: the repo and revision exist but the file does not (so an optional file is skipped).
	missingFile bool
}

func (e *hubError) Error() string { return e.msg }

func (e *hubError) Is(target error) bool { return target == e.kind }

func (e *hubError) Unwrap() error { return e.cause }

// CacheDir returns the hub cache directory: opts.CacheDir if set, else HF_HUB_CACHE
// (or the older HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub — as huggingface_hub does.
func CacheDir(opts *Options) string {
	if opts != nil && opts.CacheDir != "" {
		return expandHome(opts.CacheDir)
	}
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if d := os.Getenv(v); d != "" {
			return expandHome(d)
		}
	}
	return filepath.Join(hfHome(), "hub")
}

// hfHome is $HF_HOME, or $XDG_CACHE_HOME/huggingface, or ~/.cache/huggingface.
func hfHome() string {
	if d := os.Getenv("HF_HOME"); d != "" {
		return expandHome(d)
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(expandHome(d), "huggingface")
	}
	return filepath.Join(expandHome("~"), ".cache", "huggingface")
}

// expandHome replaces a leading "~" (alone or followed by a separator) with the home directory.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") && !strings.HasPrefix(p, `~`+string(filepath.Separator)) {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p[1:])
}

// IsLocalDir reports whether idOrDir names an existing local directory (a leading "~" is expanded).
// Resolve prefers a local directory over a hub id of the same name, as transformers does.
func IsLocalDir(idOrDir string) bool {
	if idOrDir == "" {
		return false
	}
	st, err := os.Stat(expandHome(idOrDir))
	return err == nil && st.IsDir()
}

func envTrue(name string) bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(name))) {
	case "1", "true", "yes", "on", "y":
		return true
	}
	return false
}

// Resolve finds the files of a model given as a local directory or a hub id ("org/name",
// optionally "org/name@revision") and returns their local paths.
//
// Required files must exist; optional ones that the model does not have (HTTP 404, or
// absent from the local directory or the offline cache) are left out of Files without error.
// For a hub id, files are taken from the cache when the hub says they are current (one
// HEAD request each, as huggingface_hub does), downloaded otherwise, and taken from the
// cache without any request when offline, when the revision is a cached commit hash, or
// when the hub cannot be reached.
func Resolve(idOrDir string, required, optional []string, opts *Options) (*Resolved, error) {
	if opts == nil {
		opts = &Options{}
	}
	names, isRequired, err := fileList(required, optional)
	if err != nil {
		return nil, err
	}
	if IsLocalDir(idOrDir) {
		return resolveLocal(expandHome(idOrDir), names, isRequired)
	}
	id, rev, err := parseID(idOrDir, opts.Revision)
	if err != nil {
		return nil, err
	}
	c := newRepoClient(id, rev, opts)
	return c.resolve(names, isRequired)
}

// fileList merges required and optional names (required first, duplicates removed) and validates them.
func fileList(required, optional []string) ([]string, map[string]bool, error) {
	isRequired := map[string]bool{}
	var names []string
	for i, list := range [][]string{required, optional} {
		for _, n := range list {
			if err := checkFileName(n); err != nil {
				return nil, nil, err
			}
			if _, seen := isRequired[n]; seen {
				continue
			}
			isRequired[n] = i == 0
			names = append(names, n)
		}
	}
	return names, isRequired, nil
}

func checkFileName(n string) error {
	if n == "" || strings.Contains(n, `\`) || path.IsAbs(n) || path.Clean(n) != n || n == "." ||
		n == ".." || strings.HasPrefix(n, "../") {
		return fmt.Errorf("hub: invalid file name %q: it must be a clean relative path with forward slashes", n)
	}
	return nil
}

func resolveLocal(dir string, names []string, isRequired map[string]bool) (*Resolved, error) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	res := &Resolved{Dir: dir, Files: map[string]string{}, Local: true}
	var missing []string
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			res.Files[n] = p
		} else if isRequired[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, &hubError{kind: ErrNotFound,
			msg: fmt.Sprintf("model directory %q has no %s", dir, fileWord(missing))}
	}
	return res, nil
}

func fileWord(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return "file " + q[0]
	}
	return "files " + strings.Join(q, ", ")
}

var (
	idPartRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)
	commitHashRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// validID reports whether id looks like a hub repo id: "name" or "org/name".
func validID(id string) bool {
	parts := strings.Split(id, "/")
	if len(parts) > 2 || strings.Contains(id, "--") || strings.Contains(id, "..") {
		return false
	}
	for _, p := range parts {
		if !idPartRE.MatchString(p) {
			return false
		}
	}
	return true
}

// parseID splits "org/name@revision" and checks it; a path-like string gets a "directory does not exist" error.
func parseID(s, optRev string) (id, rev string, err error) {
	id, rev = s, ""
	if i := strings.Index(s, "@"); i >= 0 {
		id, rev = s[:i], s[i+1:]
		if rev == "" {
			return "", "", fmt.Errorf("hub: %q has an empty revision after \"@\"", s)
		}
	}
	if !validID(id) {
		if st, statErr := os.Stat(expandHome(s)); statErr == nil && !st.IsDir() {
			return "", "", &hubError{kind: ErrNotFound,
				msg: fmt.Sprintf("%q is a file, not a model directory nor a Hugging Face model id", s)}
		}
		if s == "" {
			return "", "", errors.New("hub: empty model id or directory")
		}
		return "", "", &hubError{kind: ErrNotFound, msg: fmt.Sprintf(
			"model directory %q does not exist (and it is not a Hugging Face model id like \"org/name\")", s)}
	}
	switch {
	case rev == "" && optRev == "":
		rev = "main"
	case rev == "":
		rev = optRev
	case optRev != "" && optRev != rev:
		return "", "", fmt.Errorf("hub: %q asks for revision %q but Options.Revision is %q", s, rev, optRev)
	}
	if strings.Contains(rev, "..") || strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.Contains(rev, `\`) {
		return "", "", fmt.Errorf("hub: invalid revision %q", rev)
	}
	return id, rev, nil
}

// repoFolder is the cache folder name of a model repo: "models--org--name".
func repoFolder(id string) string {
	return "models--" + strings.ReplaceAll(id, "/", "--")
}
