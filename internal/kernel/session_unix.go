//go:build unix

package kernel

import (
	"os/exec"
	"syscall"
)

// detach starts cmd in a session of its own, so that signals to the kernel's process group
// (a client killing the kernel) do not reach it.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
