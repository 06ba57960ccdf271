package kernel

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonnsight/gonnsight/internal/procx"
)

// GoNB killed at once (or shut down before it could clean up) must not leave gopls (a
// process group of its own, reparented to init) or its temporary folder behind.
func TestKernelLeavesNothingBehind(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("needs setsid")
	}
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("needs /proc")
	}
	out := t.TempDir()
	// Like GoNB: a work folder under $TMPDIR and a gopls in its own session, then a hard death.
	gonb := fakeGoNB(t, `mkdir -p "${TMPDIR:-/tmp}/gonb_fake$$"
echo "${TMPDIR:-/tmp}/gonb_fake$$" > `+out+`/workdir
setsid sleep 300 &
echo $! > `+out+`/gopls
sleep 0.2
kill -9 $$
`)
	conn := filepath.Join(t.TempDir(), "kernel-left.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	t.Setenv(KeepSessionEnv, "")
	_ = RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb, SessionDir: t.TempDir()})
	pidData, err := os.ReadFile(filepath.Join(out, "gopls"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidData)))
	defer syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(stat), ") Z") {
		t.Errorf("gopls stand-in (pid %d) outlived the kernel: %s", pid, stat)
	}
	work, _ := os.ReadFile(filepath.Join(out, "workdir"))
	if w := strings.TrimSpace(string(work)); w == "" {
		t.Fatal("the fake GoNB did not record its work folder")
	} else if _, err := os.Stat(w); !os.IsNotExist(err) {
		t.Errorf("GoNB's temporary folder %s was left behind: %v", w, err)
	}
}

// The runner ends every process tagged with its run when the kernel is gone; the launcher's
// session watcher, which must outlive the kernel to remove the session once the connection
// file goes, is not one of them.
func TestSessionWatcherSurvivesRunnerCleanup(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("needs /proc")
	}
	tag := procx.NewTag()
	t.Setenv(procx.RunTagEnv, tag) // as the runner starts the launcher
	t.Setenv(KeepSessionEnv, "")
	gonb := fakeGoNB(t, `touch "$GONNSIGHT_SESSION_DIR/state"; exit 0`)
	conn := filepath.Join(t.TempDir(), "kernel-watch.json")
	_ = os.WriteFile(conn, []byte("{}"), 0o600)
	session := filepath.Join(t.TempDir(), "session")
	if err := RunKernel(LaunchOptions{ConnectionFile: conn, ModuleRoot: moduleRoot(t), ToolsDir: t.TempDir(), GoNB: gonb, SessionDir: session}); err != nil {
		t.Fatal(err)
	}
	procx.KillTagged(procx.RunTagEnv, tag, time.Second) // the runner's cleanup
	_ = os.Remove(conn)                                 // the client's final shutdown
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(session); os.IsNotExist(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the session directory %s was never removed: the watcher did not survive the runner's cleanup", session)
}
