//go:build unix

package procx

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestKillTagged(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("needs /proc")
	}
	tag := NewTag()
	// A process in a session of its own (as gopls makes its own group), and one untagged.
	tagged := exec.Command("sleep", "300")
	tagged.Env = append(os.Environ(), KernelTagEnv+"="+tag)
	tagged.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	other := exec.Command("sleep", "300")
	other.Env = append(os.Environ(), KernelTagEnv+"="+NewTag())
	for _, c := range []*exec.Cmd{tagged, other} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer other.Process.Kill()
	go tagged.Wait()
	time.Sleep(50 * time.Millisecond)
	found := KillTagged(KernelTagEnv, tag, time.Second)
	if len(found) != 1 || found[0] != tagged.Process.Pid {
		t.Errorf("found %v, want [%d]", found, tagged.Process.Pid)
	}
	time.Sleep(50 * time.Millisecond)
	if alive(tagged.Process.Pid) {
		t.Error("the tagged process survived")
	}
	if !alive(other.Process.Pid) {
		t.Error("an untagged process was killed")
	}
}
