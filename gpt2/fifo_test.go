//go:build unix

package gpt2_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/gpt2"
	"github.com/gonnsight/gonnsight/internal/golden"
)

// A model directory whose model.safetensors or config.json is a FIFO is an error at once,
// through the whole loader (hub resolution of a local directory included).
func TestLoadFIFO(t *testing.T) {
	for _, name := range []string{"model.safetensors", "config.json"} {
		dir := copyDir(t, filepath.Join(golden.Root(), "testdata", "gpt2", "tiny-a"))
		p := filepath.Join(dir, name)
		_ = os.Remove(p)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Skip(err)
		}
		done := make(chan error, 1)
		go func() { _, err := gpt2.Load(dir, nil); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "FIFO") || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: want an error naming the FIFO, got %v", name, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("Load hangs on a FIFO %s", name)
		}
	}
}

// Without a home directory the tiny model's cache is a temporary folder of this user's own;
// one planted by someone else (here a symlink) is refused.
func TestTinyCacheFallbackIsPrivate(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("GONNSIGHT_HOME", "")
	dir := gpt2.TinyDir()
	base := filepath.Join(tmp, "gonnsight-cache-"+strconv.Itoa(os.Getuid()))
	if !strings.HasPrefix(dir, base+string(os.PathSeparator)) {
		t.Fatalf("TinyDir without a home = %s, want it under %s", dir, base)
	}
	if err := os.Symlink(t.TempDir(), base); err != nil {
		t.Fatal(err)
	}
	if _, err := gpt2.EnsureTiny(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a planted cache folder: want a refusal, got %v", err)
	}
}
