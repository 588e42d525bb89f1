package redisstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/sessions"

	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
)

// errUndecryptable marks a stored value that no configured key opens, or
// that does not decode: the session is treated as lost, never as an outage.
var errUndecryptable = errors.New("stored session cannot be decrypted")

// record is what one session looks like inside its encrypted value.
type record struct {
	User    string      `json:"u,omitempty"`
	Lines   []cart.Line `json:"c,omitempty"`
	Applied []string    `json:"a,omitempty"`
	Started int64       `json:"s"` // Unix milliseconds
}

// valuesKey is where the serializer finds the record in sessions.Session.Values.
const valuesKey = "record"

// sealer is a redisstore.SessionSerializer that encrypts each value with
// AES-256-GCM. The session ID is the additional data, so a value copied
// under another key does not open. Layout: version byte 1, key-id length,
// key id, 12-byte nonce, ciphertext and tag.
type sealer struct {
	keys []namedAEAD
	byID map[string]cipher.AEAD
}

type namedAEAD struct {
	id   string
	aead cipher.AEAD
}

func newSealer(keys []session.Key) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no session encryption key configured")
	}
	s := &sealer{byID: make(map[string]cipher.AEAD)}
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

func (s *sealer) seal(id string, plain []byte) ([]byte, error) {
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

func (s *sealer) open(id string, b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 1 {
		return nil, errUndecryptable
	}
	n := int(b[1])
	if len(b) < 2+n {
		return nil, errUndecryptable
	}
	aead, ok := s.byID[string(b[2:2+n])]
	if !ok {
		return nil, errUndecryptable
	}
	rest := b[2+n:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, errUndecryptable
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], []byte(id))
	if err != nil {
		return nil, errUndecryptable
	}
	return plain, nil
}

// Serialize encrypts the session's record.
func (s *sealer) Serialize(gs *sessions.Session) ([]byte, error) {
	rec, _ := gs.Values[valuesKey].(record)
	plain, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return s.seal(gs.ID, plain)
}

// Deserialize decrypts and checks a stored record.
func (s *sealer) Deserialize(b []byte, gs *sessions.Session) error {
	plain, err := s.open(gs.ID, b)
	if err != nil {
		return err
	}
	var rec record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return errUndecryptable
	}
	if err := (cart.Cart{Lines: rec.Lines}).Validate(); err != nil || !session.ValidApplied(rec.Applied) {
		return errUndecryptable
	}
	gs.Values[valuesKey] = rec
	return nil
}

func (r record) started() time.Time { return time.UnixMilli(r.Started) }
