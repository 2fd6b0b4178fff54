package sessionsecret

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bay-sandbox/bay/store/sqlite"
)

func TestForIsPerSessionAndPerKey(t *testing.T) {
	k1, k2 := Random(), Random()
	a, b := k1.For("sess-a"), k1.For("sess-b")
	if len(a) != 64 || a == b {
		t.Fatalf("secrets %q %q", a, b)
	}
	if k1.For("sess-a") != a {
		t.Fatal("For must be deterministic")
	}
	if k2.For("sess-a") == a {
		t.Fatal("another key must give another secret")
	}
	if s := fmt.Sprintf("%v %+v %#v %s", k1, k1, k1, k1); strings.Contains(s, fmt.Sprintf("%x", k1.key)) {
		t.Fatal("formatting a keyring reveals its key")
	}
	if _, err := New(make([]byte, 16)); err == nil {
		t.Fatal("a short key must be refused")
	}
}

// TestLoadSharesTheKeyOfAStore: gateways on one store (a restart, or several
// at once) derive the same secrets; another store has another key.
func TestLoadSharesTheKeyOfAStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bay.db")
	var wg sync.WaitGroup
	got := make([]string, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			k, err := Load(ctx, st)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = k.For("sess-1")
		}()
	}
	wg.Wait()
	for _, g := range got[1:] {
		if g == "" || g != got[0] {
			t.Fatalf("gateways on one store disagree: %q", got)
		}
	}
	other, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	k, err := Load(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if k.For("sess-1") == got[0] {
		t.Fatal("another store must have another key")
	}
}

type badStore struct{ v string }

func (b badStore) InitMeta(context.Context, string, string) (string, error) {
	if b.v == "" {
		return "", errors.New("down")
	}
	return b.v, nil
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(context.Background(), badStore{}); err == nil {
		t.Fatal("a store error must be returned")
	}
	_, err := Load(context.Background(), badStore{v: "zz-not-hex-secret-material"})
	if err == nil || strings.Contains(err.Error(), "zz-not-hex") {
		t.Fatalf("malformed key: %v (must fail without echoing it)", err)
	}
}
