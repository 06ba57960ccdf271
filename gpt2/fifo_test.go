//go:build unix

package gpt2_test

import (
	"os"
	"path/filepath"
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
