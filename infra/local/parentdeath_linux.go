package main

import (
	"os"
	"syscall"
)

// stopWithParent asks the kernel for SIGTERM when our parent exits. Under make run the parent
// is `go run`, which does not pass SIGTERM on: without this, killing it would orphan the
// runner and its DynamoDB Local and emulator, still holding their ports.
func stopWithParent() {
	ppid := os.Getppid()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() != ppid { // the parent died before the request took effect
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
