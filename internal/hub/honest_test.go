package hub

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonnsight/gonnsight/internal/fsx"
	"github.com/gonnsight/gonnsight/internal/hubtest"
)

func blobs(t *testing.T, cache string) []string {
	t.Helper()
	var out []string
	_ = filepath.Walk(cache, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Base(filepath.Dir(p)) == "blobs" {
			out = append(out, info.Name())
		}
		return nil
	})
	return out
}

// A small (git) file served with no length and cut short is checked against its git blob
// hash (the ETag) and never cached, so neither a later online nor an offline run trusts it.
func TestTruncatedSmallFileNotCached(t *testing.T) {
	files := tinyFiles()
	h := hubtest.New(t, hubtest.Config{
		Repos: map[string]map[string][]byte{repoID: files},
		Tamper: func(name string, content []byte) io.Reader {
			if name == "config.json" {
				return bytes.NewReader(content[:len(content)/2])
			}
			return nil
		},
	})
	cache := hubtest.SetEnv(t, h.URL)
	_, err := Resolve(repoID, required, optional, nil)
	if err == nil || !strings.Contains(err.Error(), "config.json") || !strings.Contains(err.Error(), "sha1") {
		t.Fatalf("a truncated config.json should be refused, naming the file and the hash: %v", err)
	}
	for _, b := range blobs(t, cache) {
		if b == hubtest.GitBlobSHA1(files["config.json"]) {
			t.Errorf("the truncated config.json was cached as blob %s", b)
		}
	}
	noIncomplete(t, cache)
	t.Setenv("HF_HUB_OFFLINE", "1")
	if res, err := Resolve(repoID, required, optional, nil); err == nil {
		t.Errorf("offline, the truncated file is served from the cache: %v", res.Files)
	}
}

// A server that announces a size and then sends more is cut off at the announced size: it
// cannot fill the disk.
func TestOversizedBodyStopsAtAnnouncedSize(t *testing.T) {
	files := tinyFiles()
	const junk = 256 << 20
	h := hubtest.New(t, hubtest.Config{
		Repos: map[string]map[string][]byte{repoID: files},
		Tamper: func(name string, content []byte) io.Reader {
			if name == "model.safetensors" {
				return io.MultiReader(bytes.NewReader(content), io.LimitReader(zeros{}, junk))
			}
			return nil
		},
	})
	cache := hubtest.SetEnv(t, h.URL)
	_, err := Resolve(repoID, required, optional, nil)
	if err == nil || !strings.Contains(err.Error(), "more than") || !strings.Contains(err.Error(), "3000") {
		t.Fatalf("want an error saying the server sent more than the 3000 bytes announced, got %v", err)
	}
	if sent := h.Sent(repoID, "model.safetensors"); sent > 64<<20 {
		t.Errorf("the client read on past the announced size: the server sent %d bytes", sent)
	}
	if b := blobs(t, cache); len(b) > 1 { // config.json may be cached; nothing else
		t.Errorf("blobs cached: %v", b)
	}
	noIncomplete(t, cache)
}

// A blob whose ETag is no hash the client can check is not kept.
func TestUnverifiableETagRefused(t *testing.T) {
	m := &fileMeta{etag: "not-a-hash", size: -1}
	if err := checkVerifiable(m); err == nil || !strings.Contains(err.Error(), "not-a-hash") {
		t.Errorf("want an error naming the ETag, got %v", err)
	}
}

// Temporary files left in blobs/ by a killed download are removed by the next download.
func TestStaleIncompleteSwept(t *testing.T) {
	h, cache := setup(t)
	_ = h
	if _, err := Resolve(repoID, required, optional, nil); err != nil {
		t.Fatal(err)
	}
	blobDir := ""
	_ = filepath.Walk(cache, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() && info.Name() == "blobs" {
			blobDir = p
		}
		return nil
	})
	stale := filepath.Join(blobDir, "0123456789abcdef0123456789abcdef01234567.incomplete-999999999-abcdef01")
	live := filepath.Join(blobDir, filepath.Base(fsx.TempName(filepath.Join(blobDir, "x"))))
	for _, p := range []string{stale, live} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.SetRepo(repoID, map[string][]byte{"config.json": []byte(`{"model_type":"gpt2","n":1}`), "model.safetensors": []byte("w2")})
	if _, err := Resolve(repoID, required, optional, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a killed download's temporary file was left: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live writer's temporary file was removed: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A small file with no announced size cannot grow without bound either.
func TestUnannouncedSizeBounded(t *testing.T) {
	old := maxUnannouncedSmall
	maxUnannouncedSmall = 1 << 20
	defer func() { maxUnannouncedSmall = old }()
	files := tinyFiles()
	h := hubtest.New(t, hubtest.Config{
		Repos: map[string]map[string][]byte{repoID: files},
		Tamper: func(name string, content []byte) io.Reader {
			if name == "config.json" {
				return io.MultiReader(bytes.NewReader(content), io.LimitReader(zeros{}, 256<<20))
			}
			return nil
		},
	})
	cache := hubtest.SetEnv(t, h.URL)
	_, err := Resolve(repoID, required, optional, nil)
	if err == nil || !strings.Contains(err.Error(), "no size") || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("want an error naming the bound, got %v", err)
	}
	if sent := h.Sent(repoID, "config.json"); sent > 64<<20 {
		t.Errorf("the client read on: the server sent %d bytes", sent)
	}
	noIncomplete(t, cache)
}
