package local

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake runtime when fakeRuntimeEnv is set: it
// serves /health and /info on --port like ship and gull do, and misbehaves
// on request through FAKE_* variables.
const fakeRuntimeEnv = "BAY_LOCAL_TEST_FAKE_RUNTIME"

func TestMain(m *testing.M) {
	if os.Getenv(fakeRuntimeEnv) == "1" {
		os.Exit(fakeRuntime())
	}
	os.Exit(m.Run())
}

// fakeInfo is what GET /info of a fake runtime answers.
type fakeInfo struct {
	PID        int               `json:"pid"`
	Grandchild int               `json:"grandchild"`
	Daemon     int               `json:"daemon"`
	Args       []string          `json:"args"`
	Cwd        string            `json:"cwd"`
	Env        map[string]string `json:"env"`
	MountNS    string            `json:"mount_ns"`
	MountErr   string            `json:"mount_err"`
	// Who is what who-<container> holds at the workspace after the other
	// containers wrote theirs (read at /info time).
	Who string `json:"who"`
}

func fakeRuntime() int {
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	host := fs.String("host", "0.0.0.0", "")
	port := fs.Int("port", 0, "")
	workspace := fs.String("workspace", "", "")
	mountAt := fs.String("mount-workspace", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	var mountErr string
	if *mountAt != "" {
		// What the real runtimes do (runtimes/nsmount), kept minimal,
		// and never in the test's own namespace.
		self, _ := os.Readlink("/proc/self/ns/mnt")
		parent, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
		err := fmt.Errorf("mount namespace %q is the parent's %q", self, parent)
		if self != "" && parent != "" && self != parent {
			err = syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SLAVE, "")
		}
		if err == nil {
			err = syscall.Mount(*workspace, *mountAt, "", syscall.MS_BIND, "")
		}
		if err != nil {
			mountErr = err.Error()
		} else {
			*workspace = *mountAt
			_ = os.WriteFile(filepath.Join(*mountAt, "who-"+os.Getenv("BAY_CONTAINER_NAME")), []byte(os.Getenv("BAY_SANDBOX_ID")), 0o644)
		}
	}
	name := os.Getenv("BAY_CONTAINER_NAME")
	// The pid file lets tests find processes of a start that failed.
	pidFile := filepath.Join(*workspace, "pid-"+name)
	_ = os.WriteFile(pidFile+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o644)
	_ = os.Rename(pidFile+".tmp", pidFile)
	if p := os.Getenv("FAKE_WAIT_FOR"); p != "" {
		for i := 0; i < 500; i++ {
			if _, err := os.Stat(p); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if p := os.Getenv("FAKE_FAIL_IF_EXISTS"); p != "" {
		if _, err := os.Stat(p); err == nil {
			fmt.Println("fake: failing on purpose because", p, "exists")
			return 7
		}
	}
	if code := os.Getenv("FAKE_EXIT_AT_START"); code != "" {
		fmt.Println("fake: failing on purpose at start")
		n, _ := strconv.Atoi(code)
		return n
	}
	if os.Getenv("FAKE_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	info := fakeInfo{PID: os.Getpid(), Args: os.Args, Env: map[string]string{}, MountErr: mountErr}
	info.MountNS, _ = os.Readlink("/proc/self/ns/mnt")
	info.Cwd, _ = os.Getwd()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		info.Env[k] = v
	}
	if os.Getenv("FAKE_GRANDCHILD") == "1" {
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			fmt.Println("fake: grandchild:", err)
			return 3
		}
		info.Grandchild = cmd.Process.Pid
	}
	if os.Getenv("FAKE_DAEMON") == "1" {
		// Leaves both the group and the session, as daemonising tools do.
		cmd := exec.Command("sleep", "600")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fmt.Println("fake: daemon:", err)
			return 3
		}
		info.Daemon = cmd.Process.Pid
	}
	l, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Println("fake: listen:", err)
		return 4
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("FAKE_NEVER_HEALTHY") == "1" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"healthy","version":"0.0.0-fake"}`))
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		out := info
		if b, err := os.ReadFile(filepath.Join(*workspace, "who-"+name)); err == nil {
			out.Who = string(b)
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	fmt.Println("fake: serving on", l.Addr())
	_ = http.Serve(l, mux)
	return 0
}
