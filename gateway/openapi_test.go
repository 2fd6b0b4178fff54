package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/gateway"
	"github.com/bay-sandbox/bay/internal/openapi"
)

// TestOpenAPIMatchesRouter proves docs/openapi.json and the Fiber router
// agree: every served route is documented and every documented one served.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	srv := gateway.New(gateway.Config{}, nil, nil, nil, nil, hclog.NewNullLogger())
	served := map[string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" {
			continue // Fiber adds HEAD to every GET
		}
		served[r.Method+" "+fiberToTemplate(r.Path)] = true
	}
	documented := map[string]bool{}
	for _, op := range doc.Ops {
		documented[op.Method+" "+op.Path] = true
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes served but not in docs/openapi.json:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("operations in docs/openapi.json that no route serves:\n  %s", strings.Join(extra, "\n  "))
	}
	if len(served) < 40 {
		t.Fatalf("only %d routes found; the router listing is broken", len(served))
	}
}

// fiberToTemplate turns /v1/sandboxes/:id into /v1/sandboxes/{id}.
func fiberToTemplate(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			segs[i] = "{" + strings.TrimSuffix(name, "?") + "}"
		}
	}
	return strings.Join(segs, "/")
}

// TestOpenAPIServed checks GET /openapi.json serves the document, without
// auth, and that the answer validates as its own operation's response.
func TestOpenAPIServed(t *testing.T) {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	srv := gateway.New(gateway.Config{}, nil, nil, nil, nil, hclog.NewNullLogger())
	resp, err := srv.App().Test(httptest.NewRequest("GET", "/openapi.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if err := doc.ValidateResponse("GET", "/openapi.json", resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"openapi": "3.1.0"`) {
		t.Fatalf("not the document: %.200s", body)
	}
	// An unknown route answers the error envelope the document declares.
	resp, err = srv.App().Test(httptest.NewRequest("GET", "/v1/nope", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	if err := doc.ValidateSchema("Error", body); err != nil {
		t.Fatalf("error envelope: %v", err)
	}
}

// contract is the document every harness response is checked against.
var contract = sync.OnceValues(openapi.Load)

// checkContract validates a real response of the in-process gateway against
// docs/openapi.json: so every gateway test is also a contract test.
func checkContract(t *testing.T, method, path string, res *http.Response, body []byte) {
	t.Helper()
	doc, err := contract()
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if _, ok := doc.Find(method, strings.SplitN(path, "?", 2)[0]); !ok {
		// Undocumented routes must still answer the error envelope.
		if err := doc.ValidateSchema("Error", body); err != nil {
			t.Errorf("%s %s (undocumented) %d: %v", method, path, res.StatusCode, err)
		}
		return
	}
	if err := doc.ValidateResponse(method, path, res.StatusCode, res.Header.Get("Content-Type"), body); err != nil {
		t.Errorf("response does not match docs/openapi.json: %v", err)
	}
}
