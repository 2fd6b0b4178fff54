package nsmount

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// childEnv makes the test binary act as a runtime started in a namespace
// of its own: it binds SRC at TARGET, writes who.txt there, and after a
// line on stdin prints what who.txt then holds.
const childEnv = "NSMOUNT_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(child(spec))
	}
	os.Exit(m.Run())
}

func child(spec string) int {
	src, target, _ := strings.Cut(spec, "|")
	if err := Bind(src, target); err != nil {
		fmt.Println("bind:", err)
		return 1
	}
	wd, _ := os.Getwd()
	me := filepath.Base(src)
	if err := os.WriteFile(filepath.Join(target, "who.txt"), []byte(me), 0o644); err != nil {
		fmt.Println("write:", err)
		return 1
	}
	fmt.Println("ready", wd)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	b, err := os.ReadFile("who.txt") // relative: the working directory is the mount
	if err != nil {
		fmt.Println("read:", err)
		return 1
	}
	fmt.Println("who", string(b))
	return 0
}

func TestBindRefusesTheParentsNamespace(t *testing.T) {
	target := filepath.Join(t.TempDir(), "ws")
	err := Bind(t.TempDir(), target)
	if !errors.Is(err, ErrSharedNamespace) {
		t.Fatalf("Bind in the test's own namespace: %v, want ErrSharedNamespace", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("mount point was created before refusing: %v", err)
	}
}

func TestBindBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ src, target, want string }{
		{t.TempDir(), "workspace", "not absolute"},
		{t.TempDir(), "/", "must not be /"},
		{filepath.Join(t.TempDir(), "missing"), "/workspace", "resolve workspace"},
		{file, "/workspace", "not a directory"},
	} {
		err := Bind(tc.src, tc.target)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Bind(%q, %q) = %v, want %q", tc.src, tc.target, err, tc.want)
		}
	}
}

type runningChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// TestTwoNamespacesSeeTheirOwnDirectory runs two children in namespaces of
// their own that bind different directories at the same path: each sees
// its own file there while the other writes, the writes land in the
// sources, and the host's mount point stays empty and unmounted.
func TestTwoNamespacesSeeTheirOwnDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create mount namespaces")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "workspace") // missing: Bind creates it
	srcs := []string{filepath.Join(t.TempDir(), "cargo-a"), filepath.Join(t.TempDir(), "cargo-b")}
	var kids []runningChild
	for _, src := range srcs {
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), childEnv+"="+src+"|"+target)
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		kids = append(kids, runningChild{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)})
	}
	for i, k := range kids {
		line, _ := k.out.ReadString('\n')
		if strings.TrimSpace(line) != "ready "+target {
			t.Fatalf("child %d: %q", i, line)
		}
	}
	// Both have written who.txt at the same path; each still reads its own.
	for i, k := range kids {
		_, _ = io.WriteString(k.stdin, "go\n")
		line, _ := k.out.ReadString('\n')
		if want := "who " + filepath.Base(srcs[i]); strings.TrimSpace(line) != want {
			t.Errorf("child %d: %q, want %q", i, line, want)
		}
		if err := k.cmd.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
	for _, src := range srcs {
		b, err := os.ReadFile(filepath.Join(src, "who.txt"))
		if err != nil || string(b) != filepath.Base(src) {
			t.Errorf("%s/who.txt = %q, %v", src, b, err)
		}
	}
	ents, err := os.ReadDir(target)
	if err != nil || len(ents) != 0 {
		t.Errorf("host mount point %s: %v entries, %v", target, len(ents), err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), " "+target+" ") {
		t.Errorf("the bind mount propagated to the test's namespace:\n%s", mi)
	}
}
