//go:build !linux

package cachelab

import (
	"os"
	"syscall"
)

// sysProcAttr leaves the process attributes at their defaults.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills the process pid.
func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
