package nsmount

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Bind bind-mounts the directory src at target in the calling process's
// mount namespace and changes the working directory to target. It first
// makes every mount of the namespace a slave: mounts made here never
// propagate back to the host, while the host's later unmounts still reach
// the namespace (so it does not pin file systems the host lets go of). A
// missing target directory is created, on the host file system: an empty
// directory is the only trace left outside the namespace.
//
// Bind refuses (ErrSharedNamespace) to run in the namespace of its parent
// or of pid 1, or when it cannot read its parent's: the caller is expected
// to be started in a new namespace by a parent that stays (the local
// allocator, or unshare -m run from a shell). It needs CAP_SYS_ADMIN. The whole process must already be in
// the namespace (CLONE_NEWNS at creation), not just the calling thread.
func Bind(src, target string) error {
	t, err := checkTarget(target)
	if err != nil {
		return err
	}
	real, err := checkSource(src)
	if err != nil {
		return err
	}
	if err := ownNamespace(); err != nil {
		return err
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make mounts private to the namespace: %w", err)
	}
	if err := os.MkdirAll(t, 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	if err := syscall.Mount(real, t, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", real, t, err)
	}
	if err := sameDir(real, t); err != nil {
		return err
	}
	if err := os.Chdir(t); err != nil {
		return fmt.Errorf("enter %s: %w", t, err)
	}
	return nil
}

// ownNamespace fails unless this process's mount namespace differs from
// its parent's and, when readable, from pid 1's. It fails closed: a parent
// whose namespace cannot be read (gone, pid 1 behind ptrace restrictions,
// none at all) is no proof that the namespace is ours.
func ownNamespace() error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return fmt.Errorf("read own mount namespace: %w", err)
	}
	ppid := os.Getppid()
	if ppid <= 0 {
		return fmt.Errorf("%w: there is no parent to compare with", ErrSharedNamespace)
	}
	for _, pid := range []int{ppid, 1} {
		if pid == os.Getpid() {
			continue
		}
		other, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/mnt")
		switch {
		case err != nil && pid == ppid:
			return fmt.Errorf("%w: cannot compare with the parent's (pid %d): %v", ErrSharedNamespace, pid, err)
		case err == nil && other == self:
			return fmt.Errorf("%w: shares it with pid %d", ErrSharedNamespace, pid)
		}
	}
	return nil
}

// sameDir checks that target now shows src (same device and inode).
func sameDir(src, target string) error {
	var a, b syscall.Stat_t
	if err := syscall.Stat(src, &a); err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if err := syscall.Stat(target, &b); err != nil {
		return fmt.Errorf("stat %s: %w", target, err)
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return fmt.Errorf("%s does not show %s after the bind mount", target, src)
	}
	return nil
}
