//go:build !linux

package ship

import "syscall"

// killTree kills the command's process group (no /proc to find more).
func killTree(pid int, marker string) int {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return 1
}
