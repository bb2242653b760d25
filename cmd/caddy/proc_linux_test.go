//go:build linux

package main

import (
	"os/exec"
	"syscall"
)

// setParentDeath makes the kernel kill the child when the test binary dies,
// so a crashed or timed-out test run leaves no Caddy holding a port or a
// store lock.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
