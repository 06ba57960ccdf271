//go:build unix

package safetensors

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO named like a weights file is refused at once: opening it for reading would wait
// for a writer forever.
func TestOpenFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.safetensors")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Open(p); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "FIFO") || !strings.Contains(err.Error(), p) {
			t.Errorf("want an error naming the FIFO, got %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Open hangs on a FIFO")
	}
}
