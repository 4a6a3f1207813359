//go:build linux

package proc

import "syscall"

// sysProcAttr puts the process in its own group and has the kernel kill it
// if this program dies without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
