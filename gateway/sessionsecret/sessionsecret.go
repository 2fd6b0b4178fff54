// Package sessionsecret makes the secret each session's runtimes require
// (runtimes/wire.RequireSecret). A session's secret is HMAC-SHA256 of its id
// under one random key per store, so:
//
//   - every session has its own secret, and knowing one (a sandbox can read
//     its own) tells nothing about another's;
//   - nothing per session has to be written down: a restarted gateway
//     re-adopting a Nomad job recomputes the secret from the session id;
//   - gateways sharing one store share the key (it lives in the store's meta
//     table, created once by whichever gateway comes first), so any of them
//     can call any session.
//
// The key and the secrets are never logged, returned or put in errors.
package sessionsecret

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// MetaKey is the store meta key holding the hex-encoded key.
const MetaKey = "runtime_secret_key"

// keyBytes is the key's length: the HMAC-SHA256 block-size-safe 256 bits.
const keyBytes = 32

// Store is what Load needs: an insert-if-absent on the meta table that
// returns the value that won, so two gateways starting at once agree.
type Store interface {
	InitMeta(ctx context.Context, key, value string) (string, error)
}

// Keyring derives session secrets. The zero value is not usable; use Load,
// New or Random.
type Keyring struct {
	key []byte
}

// Load returns the keyring of the store, creating its key on first use.
func Load(ctx context.Context, st Store) (*Keyring, error) {
	fresh, err := randomKey()
	if err != nil {
		return nil, err
	}
	v, err := st.InitMeta(ctx, MetaKey, hex.EncodeToString(fresh))
	if err != nil {
		return nil, fmt.Errorf("load runtime secret key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < keyBytes {
		// Do not echo the stored value: it is the key.
		return nil, errors.New("load runtime secret key: the stored key is malformed")
	}
	return &Keyring{key: key}, nil
}

// New returns a keyring over key (at least 32 bytes).
func New(key []byte) (*Keyring, error) {
	if len(key) < keyBytes {
		return nil, fmt.Errorf("runtime secret key: need at least %d bytes", keyBytes)
	}
	return &Keyring{key: append([]byte(nil), key...)}, nil
}

// Random returns a keyring with a fresh key that lives only in memory: for
// tests and for gateways whose sessions do not outlive them.
func Random() *Keyring {
	key, err := randomKey()
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return &Keyring{key: key}
}

// For returns the secret of a session: 64 hex digits.
func (k *Keyring) For(sessionID string) string {
	m := hmac.New(sha256.New, k.key)
	// A domain label keeps this use of the key apart from any future one.
	m.Write([]byte("bay runtime secret\x00"))
	m.Write([]byte(sessionID))
	return hex.EncodeToString(m.Sum(nil))
}

// String hides the key from %v and loggers.
func (k *Keyring) String() string { return "sessionsecret.Keyring(redacted)" }

// GoString hides the key from %#v.
func (k *Keyring) GoString() string { return k.String() }

func randomKey() ([]byte, error) {
	b := make([]byte, keyBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make runtime secret key: %w", err)
	}
	return b, nil
}
