//go:build linux

package cachelab

import "syscall"

// sysProcAttr puts redis-server in its own process group, so stopping it
// reaches anything it forks, and has the kernel kill it if this process
// dies without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group led by pid.
func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }
