package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The session store holds values and edits that later cells trust: it must live where only
// this user can reach it, and never in a folder another user made or redirected.
func TestSessionDirIsPrivate(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	dir := SessionDirFor("/x/kernel-priv.json")
	if !strings.HasPrefix(dir, rt+string(os.PathSeparator)) {
		t.Fatalf("session dir %s is not under XDG_RUNTIME_DIR %s", dir, rt)
	}
	gonb := fakeGoNB(t, `touch "$GONNSIGHT_SESSION_DIR/state"; exit 0`)
	conn := filepath.Join(t.TempDir(), "kernel-priv.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	t.Setenv(KeepSessionEnv, "1")
	if err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", d, st.Mode().Perm())
		}
	}
}

func TestSessionDirPlantedByAnotherUser(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv(KeepSessionEnv, "1")
	gonb := fakeGoNB(t, `touch "$GONNSIGHT_SESSION_DIR/state"; exit 0`)
	conn := filepath.Join(t.TempDir(), "kernel-planted.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	dir := SessionDirFor(conn)

	// A symbolic link planted where the session directory goes is not followed.
	elsewhere := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, dir); err != nil {
		t.Fatal(err)
	}
	err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), dir) {
		t.Errorf("a planted symlink should be refused, naming it: %v", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "state")); err == nil {
		t.Error("the kernel wrote through the planted symlink")
	}
	_ = os.Remove(dir)

	// A directory made by another user is refused.
	if os.Getuid() != 0 {
		t.Skip("needs root to make a directory owned by another user")
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err = RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb})
	if err == nil || !strings.Contains(err.Error(), "65534") || !strings.Contains(err.Error(), dir) {
		t.Errorf("a session directory of another user should be refused, naming the owner: %v", err)
	}
	var st syscall.Stat_t
	_ = syscall.Stat(filepath.Join(dir, "state"), &st)
	if st.Ino != 0 {
		t.Error("the kernel used another user's directory")
	}
}
