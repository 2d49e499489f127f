//go:build !linux

package localstack

import "syscall"

// sysProcAttr puts a child in its own process group so Stop can signal everything it spawned.
// (PDEATHSIG is Linux-only; elsewhere a killed runner can leave its children behind.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
