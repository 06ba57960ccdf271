//go:build !unix

package kernel

import "os/exec"

func detach(cmd *exec.Cmd) {}
