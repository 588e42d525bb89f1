// Package sealed encrypts session values at rest, the same way for every
// store that keeps them outside the replica (redis and memcached mode):
// AES-256-GCM with rotating keys, the session ID as additional data, so a
// value copied under another key does not open. It also holds what those
// stores share about a stored session: its Record, the one check a record
// passes when read back (OpenRecord), and how the admin page shows it.
//
// Layout of a sealed value: version byte 1, key-id length, key id, 12-byte
// nonce, ciphertext and tag. Keys[0] seals; every key opens.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
)

// ErrUndecryptable marks a value that no configured key opens, or that is
// not a sealed value: the store treats the session as lost, never as an
// outage.
var ErrUndecryptable = errors.New("stored session cannot be decrypted")

// Sealer seals and opens values. Safe for concurrent use.
type Sealer struct {
	keys []namedAEAD
	byID map[string]cipher.AEAD
}

type namedAEAD struct {
	id   string
	aead cipher.AEAD
}

// New returns a sealer over keys: each secret 32 bytes, each ID 1 to 255
// characters and listed once.
func New(keys []session.Key) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no session encryption key configured")
	}
	s := &Sealer{byID: make(map[string]cipher.AEAD)}
	for _, k := range keys {
		if len(k.Secret) != 32 {
			return nil, fmt.Errorf("session encryption key %q: want 32 bytes, got %d", k.ID, len(k.Secret))
		}
		if k.ID == "" || len(k.ID) > 255 {
			return nil, fmt.Errorf("session encryption key id %q: want 1-255 characters", k.ID)
		}
		if _, dup := s.byID[k.ID]; dup {
			return nil, fmt.Errorf("session encryption key id %q is listed twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, namedAEAD{k.ID, aead})
		s.byID[k.ID] = aead
	}
	return s, nil
}

// Seal encrypts plain with the first key, bound to id.
func (s *Sealer) Seal(id string, plain []byte) ([]byte, error) {
	k := s.keys[0]
	out := make([]byte, 0, 2+len(k.id)+12+len(plain)+16)
	out = append(out, 1, byte(len(k.id)))
	out = append(out, k.id...)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plain, []byte(id)), nil
}

// Open decrypts b, sealed for id, with the key it names; ErrUndecryptable
// when it does not open.
func (s *Sealer) Open(id string, b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 1 {
		return nil, ErrUndecryptable
	}
	n := int(b[1])
	if len(b) < 2+n {
		return nil, ErrUndecryptable
	}
	aead, ok := s.byID[string(b[2:2+n])]
	if !ok {
		return nil, ErrUndecryptable
	}
	rest := b[2+n:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrUndecryptable
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], []byte(id))
	if err != nil {
		return nil, ErrUndecryptable
	}
	return plain, nil
}

// Record is what one session looks like inside its sealed value, in
// every store that seals.
type Record struct {
	User    string      `json:"u,omitempty"`
	Lines   []cart.Line `json:"c,omitempty"`
	Applied []string    `json:"a,omitempty"`
	Started int64       `json:"s"` // Unix milliseconds
}

// StartedAt is when the record's session began.
func (r Record) StartedAt() time.Time { return time.UnixMilli(r.Started) }

// RecordOf is the record that holds sess: its data and when it began.
func RecordOf(sess *session.Session) Record {
	return Record{User: sess.User, Lines: sess.Cart.Lines, Applied: sess.Applied, Started: sess.Started.UnixMilli()}
}

// Data is the session data the record holds.
func (r Record) Data() session.Data {
	return session.Data{User: r.User, Cart: cart.Cart{Lines: r.Lines}, Applied: r.Applied}
}

// Found is the session a store found under id, held by the record it
// stored as value, at now: its data and start, when it ends by t, and the
// Version of value, to save over. The caller has checked that it has not
// ended (session.Timeouts.Ended).
func (r Record) Found(id string, value []byte, t session.Timeouts, now time.Time) *session.Session {
	return &session.Session{
		Data:    r.Data(),
		ID:      id,
		Event:   session.EventFound,
		Started: r.StartedAt(),
		Expires: t.Ends(r.StartedAt(), now),
		Version: Version(value),
	}
}

// SealRecord seals rec for id: JSON, then Seal.
func (s *Sealer) SealRecord(id string, rec Record) ([]byte, error) {
	plain, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return s.Seal(id, plain)
}

// OpenRecord opens a record sealed for id, and checks it: the one check
// every stored record passes before it is used (session.Data.Validate).
// A value that does not open, does not decode or fails the check is
// ErrUndecryptable: the store treats the session as lost.
func (s *Sealer) OpenRecord(id string, b []byte) (Record, error) {
	var rec Record
	plain, err := s.Open(id, b)
	if err != nil {
		return rec, err
	}
	if json.Unmarshal(plain, &rec) != nil || rec.Data().Validate() != nil {
		return Record{}, ErrUndecryptable
	}
	return rec, nil
}

// Show fills in what the admin page shows of the sealed value raw, stored
// under id: that it is held, its size, its first bytes (Shown) and, when
// it opens (OpenRecord), what it holds. It returns the ID of the key that
// sealed it.
func (s *Sealer) Show(in *session.Inspection, id string, raw []byte) (keyID string) {
	in.Held = true
	in.RawBytes = len(raw)
	in.Raw, keyID = Shown(raw)
	if rec, err := s.OpenRecord(id, raw); err == nil {
		in.Decoded = rec.Indented()
	}
	return keyID
}

// Version names a sealed value: a short hash of its bytes. Each value has
// a fresh nonce, so two saves never share one: a store that saves only
// over the value a session was loaded from compares versions.
func Version(value []byte) string {
	sum := sha256.Sum256(value)
	return hex.EncodeToString(sum[:12])
}

// Shown is a sealed value for people: its first 96 bytes as hex ("…" when
// cut), and the ID of the key that sealed it.
func Shown(raw []byte) (hexText, keyID string) {
	shown := raw
	if len(shown) > 96 {
		shown = shown[:96]
	}
	hexText = hex.EncodeToString(shown)
	if len(shown) < len(raw) {
		hexText += "…"
	}
	if len(raw) > 2 && len(raw) >= 2+int(raw[1]) {
		keyID = string(raw[2 : 2+int(raw[1])])
	}
	return hexText, keyID
}

// Indented is the record as people read it, indented JSON.
func (r Record) Indented() string {
	b, _ := json.MarshalIndent(struct {
		User    string      `json:"user"`
		Cart    []cart.Line `json:"cart"`
		Started time.Time   `json:"started"`
		Applied int         `json:"idempotency_keys_remembered"`
	}{r.User, r.Lines, r.StartedAt().UTC(), len(r.Applied)}, "", "  ")
	return string(b)
}
