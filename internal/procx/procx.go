//go:build unix

// Package procx finds and ends the processes a run left behind: each process started for a
// kernel carries a tag in its environment (inherited by GoNB, gopls and every cell), so the
// ones that escaped their process group (gopls makes its own) or were reparented to init when
// their parent died are still found and stopped.
package procx

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Environment variables that tag processes: the launcher tags GoNB and what it starts, the
// runner tags the kernel it starts (the launcher included).
const (
	KernelTagEnv = "GONNSIGHT_KERNEL_TAG"
	RunTagEnv    = "GONNSIGHT_RUN_TAG"
)

// NewTag returns a fresh random tag value.
func NewTag() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Tagged lists the pids of this user's running processes whose environment holds
// name=tag (Linux /proc; none elsewhere). The calling process is never listed.
func Tagged(name, tag string) []int {
	if tag == "" {
		return nil
	}
	want := []byte("\x00" + name + "=" + tag + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	self := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(append(append([]byte{0}, env...), 0), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// KillTagged stops every process tagged name=tag: SIGTERM to each and its process group,
// then, after grace, SIGKILL to those still running. It returns the pids it found.
func KillTagged(name, tag string, grace time.Duration) []int {
	var all []int
	seen := map[int]bool{}
	for round := 0; round < 5; round++ {
		pids := Tagged(name, tag)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if !seen[pid] {
				seen[pid] = true
				all = append(all, pid)
			}
			signalTree(pid, syscall.SIGTERM)
		}
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) && anyAlive(pids) {
			time.Sleep(20 * time.Millisecond)
		}
		for _, pid := range pids {
			if alive(pid) {
				signalTree(pid, syscall.SIGKILL)
			}
		}
		deadline = time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) && anyAlive(pids) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return all
}

// signalTree signals pid and, when pid leads a process group, the group.
func signalTree(pid int, sig syscall.Signal) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		_ = syscall.Kill(-pid, sig)
	}
	_ = syscall.Kill(pid, sig)
}

func anyAlive(pids []int) bool {
	for _, p := range pids {
		if alive(p) {
			return true
		}
	}
	return false
}

// alive reports whether pid runs (a zombie, exited but not yet reaped, counts as gone).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(data, ')'); i >= 0 && i+2 < len(data) {
		return data[i+2] != 'Z' && data[i+2] != 'X'
	}
	return true
}
