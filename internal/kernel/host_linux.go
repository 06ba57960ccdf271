package kernel

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel end the host if the launcher dies without stopping it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
