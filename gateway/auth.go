package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
)

const ownerKey = "owner"

// DefaultOwner owns objects created without an X-Owner header.
const DefaultOwner = "default"

var ownerRe = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,128}$`)

// HashKey is the stored form of an API key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (s *Server) authMiddleware(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	switch {
	case h != "":
		key, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !s.validKey(strings.TrimSpace(key)) {
			return apierr.New(http.StatusUnauthorized, apierr.CodeUnauthorized, "invalid API key")
		}
	case !s.cfg.AllowAnonymous:
		return apierr.New(http.StatusUnauthorized, apierr.CodeUnauthorized, "missing API key (Authorization: Bearer <key>)")
	}
	owner := c.Get("X-Owner")
	if owner == "" {
		owner = DefaultOwner
	} else if !ownerRe.MatchString(owner) {
		return apierr.Validation("X-Owner must match %s", ownerRe.String())
	} else if strings.HasPrefix(owner, "__") {
		// Reserved for internal owners such as the warm pool's.
		return apierr.Validation("X-Owner must not start with \"__\" (reserved)")
	}
	c.Locals(ownerKey, owner)
	return c.Next()
}

func (s *Server) validKey(key string) bool {
	if key == "" {
		return false
	}
	got := HashKey(key)
	ok := false
	for _, h := range s.cfg.APIKeyHashes {
		if subtle.ConstantTimeCompare([]byte(got), []byte(h)) == 1 {
			ok = true
		}
	}
	return ok
}

func owner(c *fiber.Ctx) string {
	o, _ := c.Locals(ownerKey).(string)
	return o
}

// MetaStore is the part of the store credentials need.
type MetaStore interface {
	GetMeta(ctx context.Context, key string) (string, bool, error)
	SetMeta(ctx context.Context, key, value string) error
}

const metaGeneratedKeyHash = "generated_api_key_sha256"

// Credentials works out the accepted key hashes. Configured keys win; with
// none and anonymous mode off, a key is generated at the first start: its
// hash goes to the store and the key to <dataDir>/credentials.json (0600).
// generated is the new key (to print once), "" when none was made now.
func Credentials(ctx context.Context, st MetaStore, dataDir string, keys []string, anonymous bool) (hashes []string, generated string, err error) {
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			hashes = append(hashes, HashKey(k))
		}
	}
	if len(hashes) > 0 || anonymous {
		return hashes, "", nil
	}
	if h, ok, err := st.GetMeta(ctx, metaGeneratedKeyHash); err != nil {
		return nil, "", fmt.Errorf("read key hash: %w", err)
	} else if ok {
		return []string{h}, "", nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", fmt.Errorf("generate key: %w", err)
	}
	key := "bay_" + hex.EncodeToString(b[:])
	creds, _ := json.MarshalIndent(map[string]string{"api_key": key}, "", "  ")
	path := filepath.Join(dataDir, "credentials.json")
	if err := os.WriteFile(path, append(creds, '\n'), 0o600); err != nil {
		return nil, "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := st.SetMeta(ctx, metaGeneratedKeyHash, HashKey(key)); err != nil {
		return nil, "", fmt.Errorf("store key hash: %w", err)
	}
	return []string{HashKey(key)}, key, nil
}
