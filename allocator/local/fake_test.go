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
}

func fakeRuntime() int {
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	host := fs.String("host", "0.0.0.0", "")
	port := fs.Int("port", 0, "")
	workspace := fs.String("workspace", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
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
	info := fakeInfo{PID: os.Getpid(), Args: os.Args, Env: map[string]string{}}
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
		_ = json.NewEncoder(w).Encode(info)
	})
	fmt.Println("fake: serving on", l.Addr())
	_ = http.Serve(l, mux)
	return 0
}
