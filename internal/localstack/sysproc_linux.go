package localstack

import "syscall"

// sysProcAttr puts a child in its own process group (so Stop can signal everything it
// spawned) and has the kernel kill it if we die first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
