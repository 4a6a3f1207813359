//go:build linux

package fakenet

import "syscall"

// sysProcAttr makes the kernel stop a server (SIGTERM: nsd then stops its
// own children) if the test process dies without running its cleanups.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
