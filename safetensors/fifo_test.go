//go:build unix

package safetensors

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/fsx"
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

// A write killed half-way leaves a temporary file; the next Write in that folder removes it
// (its writer is dead) and leaves a live writer's alone.
func TestWriteSweepsDeadWritersTemps(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, ".acts.safetensors.tmp-999999999-abcdefabcdef")
	live := fsx.TempName(filepath.Join(dir, "other.safetensors"))
	for _, p := range []string{dead, live} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(filepath.Join(dir, "acts.safetensors"), []Tensor{F32("x", []int{1}, []float32{1})}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead writer's temporary file was left: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live writer's temporary file was removed: %v", err)
	}
}
