package nnsight_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gonnsight/gonnsight/internal/fsx"
	"github.com/gonnsight/gonnsight/nnsight"
)

// Kept values are private to the user: folders 0700, files 0600.
func TestKeepIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "session")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv(nnsight.EnvSessionDir, dir)
	if err := nnsight.Keep("secret", tensors.FromValue([]float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		filepath.Join(dir, "kept"):                       0o700,
		filepath.Join(dir, "kept", "secret.safetensors"): 0o600,
	} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
}

// A "kept" folder that is a planted symbolic link is not followed, for writing or reading.
func TestKeptRefusesPlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(dir, "kept")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(nnsight.EnvSessionDir, dir)
	err := nnsight.Keep("x", tensors.FromValue([]float32{1}))
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Keep through a planted symlink: %v", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("Keep wrote through the symlink: %v", entries)
	}
	if _, err := nnsight.Kept("x"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Kept through a planted symlink: %v", err)
	}
}

// A cell killed while writing a kept value leaves a temporary file; the next Keep sweeps it
// (its writer is gone) and leaves a live writer's alone.
func TestKeepSweepsDeadWritersTemps(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(nnsight.EnvSessionDir, dir)
	kept := filepath.Join(dir, "kept")
	if err := nnsight.Keep("a", tensors.FromValue([]float32{1})); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(kept, ".b.safetensors.tmp-999999999-abcdefabcdef")
	live := fsx.TempName(filepath.Join(kept, "c.safetensors")) // this process: alive
	for _, p := range []string{dead, live} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := nnsight.Keep("a", tensors.FromValue([]float32{2})); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead writer's temporary file was left: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live writer's temporary file was removed: %v", err)
	}
}
