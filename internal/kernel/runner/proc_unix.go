//go:build unix

package runner

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the kernel in its own process group, as Jupyter does, so signals reach
// the kernel and its children (GoNB's cell processes) together.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if cmd.Process == nil {
		return nil
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		return cmd.Process.Signal(sig)
	}
	return nil
}

func interruptProcess(cmd *exec.Cmd) error { return signalGroup(cmd, syscall.SIGINT) }
func terminateProcess(cmd *exec.Cmd)       { _ = signalGroup(cmd, syscall.SIGTERM) }
func killProcess(cmd *exec.Cmd)            { _ = signalGroup(cmd, syscall.SIGKILL) }
