package runner

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Stopping a run (Ctrl-C or SIGTERM on `gonnsight run`) interrupts the running cell, writes
// the notebook with what ran, and ends the kernel and everything it started, including
// processes in sessions of their own.
func TestRunNotebookStop(t *testing.T) {
	needKernel(t)
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("needs setsid")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	path := writeNotebook(t,
		"print('one')",
		"import subprocess, time\np = subprocess.Popen(['setsid', 'sleep', '300'])\nopen("+pyQuote(pidFile)+", 'w').write(str(p.pid))\nprint('started', flush=True)\ntime.sleep(120)",
		"print('three')")
	out := filepath.Join(dir, "out.ipynb")
	stop := make(chan struct{})
	go func() {
		for range 600 {
			if data, err := os.ReadFile(pidFile); err == nil && len(data) > 0 {
				time.Sleep(200 * time.Millisecond)
				close(stop)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	start := time.Now()
	res, err := RunNotebook(path, Options{Out: out, Stop: stop})
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("want ErrStopped, got %v", err)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("stopping took %v", d)
	}
	if res == nil || !res.Written {
		t.Fatal("the partial notebook was not written")
	}
	cells := notebookCells(readBack(t, out))
	if got := outputText(cells[0]); got != "one\n" {
		t.Errorf("cell 1 output %q", got)
	}
	if got := outputText(cells[1]); !strings.Contains(got, "started") {
		t.Errorf("cell 2 output %q: what the interrupted cell printed is kept", got)
	}
	if got := outputText(cells[2]); got != "" {
		t.Errorf("cell 3 ran after the stop: %q", got)
	}
	if st := res.Cells[len(res.Cells)-1].Status; st != "interrupted" {
		t.Errorf("last cell status %q, want interrupted", st)
	}
	data, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid > 0 {
		defer syscall.Kill(pid, syscall.SIGKILL)
		time.Sleep(100 * time.Millisecond)
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(stat), ") Z") {
			t.Errorf("a process the cell started (pid %d, own session) outlived the run", pid)
		}
	}
}

// A stop while the kernel is still starting ends the run at once (not after the startup
// timeout), and the kernel with it.
func TestRunNotebookStopDuringStartup(t *testing.T) {
	dir := t.TempDir()
	specDir := filepath.Join(dir, "kernels", "slow")
	_ = os.MkdirAll(specDir, 0o755)
	pidFile := filepath.Join(dir, "pid")
	_ = os.WriteFile(filepath.Join(specDir, "kernel.json"),
		[]byte(`{"argv": ["/bin/sh", "-c", "echo $$ > `+pidFile+`; exec sleep 300", "{connection_file}"], "display_name": "slow", "language": "go"}`), 0o644)
	t.Setenv("JUPYTER_PATH", dir+string(os.PathListSeparator)+os.Getenv("JUPYTER_PATH"))
	path := writeNotebook(t, "1")
	stop := make(chan struct{})
	time.AfterFunc(500*time.Millisecond, func() { close(stop) })
	start := time.Now()
	res, err := RunNotebook(path, Options{KernelName: "slow", StartupTimeout: 60 * time.Second, Stop: stop})
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("want ErrStopped, got %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the stop waited for the startup timeout: %v", d)
	}
	if res == nil || !res.Written {
		t.Error("the notebook was not written")
	}
	data, _ := os.ReadFile(pidFile)
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 {
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(stat), ") Z") {
			t.Errorf("the kernel (pid %d) outlived the stopped run", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
