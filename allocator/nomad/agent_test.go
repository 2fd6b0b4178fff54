package nomad

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
	"github.com/bay-sandbox/bay/internal/testutil"
)

// The test binary doubles as a fake runtime (raw_exec runs it) when
// fakeRuntimeEnv is set: it serves /health like ship and gull, /info (pid,
// workspace), /fetch?url= (to prove the group's shared network) and
// /write?name= (to prove the shared cargo).
const fakeRuntimeEnv = "BAY_NOMAD_TEST_FAKE_RUNTIME"

// devAgent is the one Nomad dev agent of this test process (never more than
// one at a time on this machine); stopped when the package's tests end.
var devAgent struct {
	once  sync.Once
	agent *devagent.Agent
	err   error
}

func TestMain(m *testing.M) {
	if os.Getenv(fakeRuntimeEnv) == "1" {
		os.Exit(fakeRuntime())
	}
	code := m.Run()
	if devAgent.agent != nil {
		devAgent.agent.Stop()
	}
	os.Exit(code)
}

type fakeInfo struct {
	PID       int    `json:"pid"`
	Workspace string `json:"workspace"`
	Container string `json:"container"`
}

func fakeRuntime() int {
	fs := flag.NewFlagSet("fake", flag.ContinueOnError)
	port := fs.Int("port", 0, "")
	workspace := fs.String("workspace", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if code := os.Getenv("FAKE_EXIT_AT_START"); code != "" {
		fmt.Println("fake: exiting at start on purpose")
		n, _ := strconv.Atoi(code)
		return n
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"healthy"}`)
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(fakeInfo{PID: os.Getpid(), Workspace: *workspace, Container: os.Getenv("BAY_CONTAINER_NAME")})
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Query().Get("name"))
		if err := os.WriteFile(filepath.Join(*workspace, name), []byte(os.Getenv("BAY_CONTAINER_NAME")), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	// All interfaces: the bridge maps the host port to the namespace's eth0.
	srv := &http.Server{Addr: ":" + strconv.Itoa(*port), Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		return 1
	}
	return 0
}

// nomadAgent returns the address of a running dev agent with raw_exec,
// bridge networking and host volumes, starting it on first use; it skips
// with a printed reason when no nomad binary is on PATH.
func nomadAgent(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no Nomad dev agent")
	}
	bin := testutil.Nomad(t)
	devAgent.once.Do(func() { devAgent.agent, devAgent.err = devagent.Start(bin, 60*time.Second) })
	if devAgent.err != nil {
		t.Fatalf("nomad dev agent: %v", devAgent.err)
	}
	return devAgent.agent.Addr
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
