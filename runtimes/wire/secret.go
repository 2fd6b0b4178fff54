package wire

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// The session secret: the gateway makes one per session and hands it to the
// session's runtimes in SecretEnv; its clients send it in SecretHeader. A
// runtime answers every route but /health only when the header matches, so a
// workload that can reach a runtime's port (another sandbox, anything on a
// cluster network) cannot drive it around the gateway.
const (
	SecretHeader = "X-Bay-Runtime-Secret"
	SecretEnv    = "BAY_RUNTIME_SECRET"
	// CodeUnauthorized is the wire code of a call without the right secret.
	CodeUnauthorized = "unauthorized"
)

// HealthPath is the one route a runtime serves without the secret: Nomad's
// and Consul's checks, and the gateway's probes, call it unauthenticated.
const HealthPath = "/health"

// RequireSecret is the Fiber middleware that refuses a request without the
// session's secret with 401 in the ErrorBody envelope. Both sides are hashed
// first so the comparison is constant-time in the secret's length too. An
// empty secret lets every request through (a runtime embedded in a test);
// the runtime binaries refuse to start without one unless told explicitly.
func RequireSecret(secret string) fiber.Handler {
	if secret == "" {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	want := sha256.Sum256([]byte(secret))
	return func(c *fiber.Ctx) error {
		// Exactly the health route: Fiber routes case-insensitively, so a
		// looser match here could exempt a path that routes elsewhere.
		if c.Path() == HealthPath {
			return c.Next()
		}
		got := sha256.Sum256(c.Request().Header.Peek(SecretHeader))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			// The body is not read (an upload streams it): close the
			// connection so its unread bytes are never parsed as the
			// next request.
			c.Context().SetConnectionClose()
			return NewAPIError(http.StatusUnauthorized, CodeUnauthorized, "missing or invalid runtime secret")
		}
		return c.Next()
	}
}

// WithSecret returns a copy of hc whose requests carry secret in
// SecretHeader. The copy shares hc's transport (and so its connection pool);
// it is cheap enough to make per call. An empty secret returns hc itself.
func WithSecret(hc *http.Client, secret string) *http.Client {
	if secret == "" {
		return hc
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	out := *hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = secretTransport{base: base, secret: secret}
	return &out
}

type secretTransport struct {
	base   http.RoundTripper
	secret string
}

// RoundTrip adds the header to a clone: a RoundTripper must not modify the
// caller's request.
func (t secretTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set(SecretHeader, t.secret)
	return t.base.RoundTrip(r)
}

// StripSecret removes SecretEnv and SecretFileEnv from an environment list,
// for the children a runtime starts: agent code has no use for the secret.
func StripSecret(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, SecretEnv+"=") || strings.HasPrefix(kv, SecretFileEnv+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// SecretFileEnv names a file holding the secret, the alternative to
// SecretEnv for a secret that should not sit in the process environment (a
// Nomad template renders it into the task's secrets directory).
const SecretFileEnv = SecretEnv + "_FILE"

// SecretFromEnv reads the secret a runtime binary was started with: SecretEnv,
// else the file named by SecretFileEnv (surrounding white space trimmed). It
// unsets both so nothing the runtime starts inherits them. "" with a nil
// error means none was given.
func SecretFromEnv() (string, error) {
	secret := os.Getenv(SecretEnv)
	file := os.Getenv(SecretFileEnv)
	_ = os.Unsetenv(SecretEnv)
	_ = os.Unsetenv(SecretFileEnv)
	if secret != "" || file == "" {
		return secret, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read runtime secret: %w", err)
	}
	secret = strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("read runtime secret: %s is empty", file)
	}
	return secret, nil
}
