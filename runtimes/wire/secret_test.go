package wire

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func secretApp(secret string) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: FiberErrorHandler})
	app.Use(RequireSecret(secret))
	app.Get("/health", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Get("/meta", func(c *fiber.Ctx) error { return c.SendString("meta") })
	app.Post("/ipython/exec", func(c *fiber.Ctx) error { return c.SendString("ran") })
	return app
}

func TestRequireSecret(t *testing.T) {
	app := secretApp("s3cret")
	cases := []struct {
		name, method, path, header string
		send                       bool
		want                       int
	}{
		{"health without secret", "GET", "/health", "", false, 200},
		{"meta without secret", "GET", "/meta", "", false, 401},
		{"exec without secret", "POST", "/ipython/exec", "", false, 401},
		{"exec with empty secret", "POST", "/ipython/exec", "", true, 401},
		{"exec with wrong secret", "POST", "/ipython/exec", "s3cres", true, 401},
		{"exec with a prefix of the secret", "POST", "/ipython/exec", "s3c", true, 401},
		{"exec with the secret and more", "POST", "/ipython/exec", "s3cret2", true, 401},
		{"exec with the secret", "POST", "/ipython/exec", "s3cret", true, 200},
		{"meta with the secret", "GET", "/meta", "s3cret", true, 200},
		// Routed case-insensitively to /meta: must not slip past as "health".
		{"upper-case path without secret", "GET", "/META", "", false, 401},
		{"health-like prefix without secret", "GET", "/health/../meta", "", false, 401},
		{"unknown route without secret", "GET", "/nope", "", false, 401},
		{"unknown route with secret", "GET", "/nope", "s3cret", true, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.send {
				req.Header.Set(SecretHeader, tc.header)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want != 401 {
				return
			}
			var eb ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
				t.Fatalf("401 body is not the envelope: %v", err)
			}
			if eb.Error.Code != CodeUnauthorized || eb.Error.Message == "" {
				t.Fatalf("envelope %+v", eb)
			}
		})
	}
}

func TestRequireSecretEmptyServesEveryone(t *testing.T) {
	resp, err := secretApp("").Test(httptest.NewRequest("POST", "/ipython/exec", nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestWithSecret(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get(SecretHeader))
	}))
	defer srv.Close()

	base := srv.Client()
	hc := WithSecret(base, "abc")
	if hc == base || base.Transport == hc.Transport {
		t.Fatal("WithSecret must return a copy and leave the base client alone")
	}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if req.Header.Get(SecretHeader) != "" {
		t.Fatal("the caller's request was modified")
	}
	resp, err = base.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !slices.Equal(got, []string{"abc", ""}) {
		t.Fatalf("headers seen %q, want the secret only through the wrapped client", got)
	}
	if WithSecret(base, "") != base {
		t.Fatal("an empty secret should return the client unchanged")
	}
}

func TestStripSecret(t *testing.T) {
	in := []string{"A=1", SecretEnv + "=x", SecretEnv + "=", SecretFileEnv + "=/f", SecretEnv + "_OTHER=keep", "B=2"}
	if got, want := StripSecret(in), []string{"A=1", SecretEnv + "_OTHER=keep", "B=2"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSecretFromEnv(t *testing.T) {
	t.Setenv(SecretEnv, "direct")
	t.Setenv(SecretFileEnv, "/does/not/matter")
	if s, err := SecretFromEnv(); err != nil || s != "direct" {
		t.Fatalf("got %q, %v", s, err)
	}
	if _, ok := os.LookupEnv(SecretEnv); ok {
		t.Fatal("SecretEnv still set")
	}
	if _, ok := os.LookupEnv(SecretFileEnv); ok {
		t.Fatal("SecretFileEnv still set")
	}

	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SecretFileEnv, f)
	if s, err := SecretFromEnv(); err != nil || s != "from-file" {
		t.Fatalf("got %q, %v", s, err)
	}

	t.Setenv(SecretFileEnv, filepath.Join(t.TempDir(), "missing"))
	if _, err := SecretFromEnv(); err == nil {
		t.Fatal("a missing secret file must be an error")
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, []byte(" \n"), 0o600)
	t.Setenv(SecretFileEnv, empty)
	if _, err := SecretFromEnv(); err == nil {
		t.Fatal("an empty secret file must be an error")
	}
	if s, err := SecretFromEnv(); err != nil || s != "" {
		t.Fatalf("nothing set: got %q, %v", s, err)
	}
}

// TestWithSecretOverUnixSocket: a unix:// endpoint gets a client of its own,
// which must still carry the secret.
func TestWithSecretOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "rt.sock")
	ln, err := Listen("127.0.0.1:0", sock)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(SecretHeader)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	base, hc := Endpoint(UnixURL(sock), WithSecret(&http.Client{}, "over-the-socket"))
	resp, err := hc.Get(base + "/meta")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-got; s != "over-the-socket" {
		t.Fatalf("secret over the socket = %q", s)
	}
}
