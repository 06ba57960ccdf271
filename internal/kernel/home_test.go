package kernel

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Without a home directory the tools (binaries the kernel runs) fall back to a temporary
// folder: one of this user's own, never a shared one another user could fill first.
func TestDefaultHomeFallbackIsPrivate(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("HOME", "")
	t.Setenv(HomeEnv, "")
	home := DefaultHome()
	if home != filepath.Join(tmp, "gonnsight-"+strconv.Itoa(os.Getuid())) {
		t.Errorf("DefaultHome without a home = %s, want a per-user folder in %s", home, tmp)
	}
	// A planted symlink there is refused before any tool is run from it.
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, home); err != nil {
		t.Fatal(err)
	}
	conn := filepath.Join(t.TempDir(), "kernel-home.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), SessionDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("tools from a planted folder: want a refusal, got %v", err)
	}
}
