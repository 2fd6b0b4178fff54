package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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

// Key is an accepted API key: the SHA-256 of the bearer, the owner it acts
// for, and whether it is an admin key (may act as any owner through
// X-Owner, may call /v1/admin routes).
type Key struct {
	Name  string
	Hash  string
	Owner string
	Admin bool
}

// keyring is the set of accepted keys by hash; it is replaced whole.
type keyring map[string]Key

// SetKeys replaces the accepted keys (a reload); requests in flight keep
// the keys they were authenticated with.
func (s *Server) SetKeys(keys []Key) {
	kr := keyring{}
	for _, h := range s.cfg.APIKeyHashes {
		kr[strings.ToLower(h)] = Key{Name: "api_keys", Hash: h, Owner: DefaultOwner, Admin: true}
	}
	for _, k := range keys {
		k.Hash = strings.ToLower(k.Hash)
		if k.Owner == "" {
			k.Owner = DefaultOwner
		}
		kr[k.Hash] = k
	}
	s.keys.Store(&kr)
}

// lookupKey finds the key a bearer token names.
func (s *Server) lookupKey(token string) (Key, bool) {
	if token == "" {
		return Key{}, false
	}
	kr := s.keys.Load()
	if kr == nil {
		return Key{}, false
	}
	k, ok := (*kr)[HashKey(token)]
	return k, ok
}

const adminKey = "bay_admin"

func (s *Server) authMiddleware(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
	own, admin := DefaultOwner, false
	switch {
	case h != "":
		scheme, token, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "bearer") {
			return apierr.New(http.StatusUnauthorized, apierr.CodeUnauthorized, "invalid Authorization header (want: Bearer <key>)")
		}
		k, ok := s.lookupKey(strings.TrimSpace(token))
		if !ok {
			return apierr.New(http.StatusUnauthorized, apierr.CodeUnauthorized, "invalid API key")
		}
		own, admin = k.Owner, k.Admin
	case !s.cfg.AllowAnonymous:
		return apierr.New(http.StatusUnauthorized, apierr.CodeUnauthorized, "missing API key (Authorization: Bearer <key>)")
	}
	if xo := c.Get("X-Owner"); xo != "" {
		switch {
		case !ownerRe.MatchString(xo):
			return apierr.Validation("X-Owner must match %s", ownerRe.String())
		case strings.HasPrefix(xo, "__"):
			// Reserved for internal owners such as the warm pool's.
			return apierr.Validation("X-Owner must not start with \"__\" (reserved)")
		case h == "" || admin:
			// Anonymous mode or an admin key: X-Owner picks the owner.
			own = xo
		case xo != own:
			return apierr.New(http.StatusForbidden, apierr.CodeForbidden,
				"this API key acts for its own owner only; X-Owner is honoured for admin keys").
				With(map[string]any{"field": "X-Owner"})
		}
	}
	c.Locals(ownerKey, own)
	c.Locals(adminKey, admin)
	return c.Next()
}

// adminOnly guards /v1/admin: an admin key is required.
func (s *Server) adminOnly(c *fiber.Ctx) error {
	if ok, _ := c.Locals(adminKey).(bool); !ok {
		return apierr.New(http.StatusForbidden, apierr.CodeForbidden, "admin routes need an admin API key")
	}
	return c.Next()
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

// Credentials works out the legacy key hashes. Configured api_keys win;
// with none, a key generated at an earlier start stays valid, and one is
// generated now only when anonymous mode is off and no named keys exist
// (named is true): its hash goes to the store and the key to
// <dataDir>/credentials.json (0600). generated is the new key (to print
// once), "" when none was made now.
func Credentials(ctx context.Context, st MetaStore, dataDir string, keys []string, anonymous, named bool) (hashes []string, generated string, err error) {
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			hashes = append(hashes, HashKey(k))
		}
	}
	if len(hashes) > 0 {
		return hashes, "", nil
	}
	if h, ok, err := st.GetMeta(ctx, metaGeneratedKeyHash); err != nil {
		return nil, "", fmt.Errorf("read key hash: %w", err)
	} else if ok && !anonymous {
		return []string{h}, "", nil
	}
	if anonymous || named {
		return nil, "", nil
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
