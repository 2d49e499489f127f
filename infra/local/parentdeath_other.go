//go:build !linux

package main

// stopWithParent is Linux-only (PR_SET_PDEATHSIG); elsewhere stop the runner with Ctrl-C.
func stopWithParent() {}
