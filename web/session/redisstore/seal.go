package redisstore

import (
	"encoding/json"

	"github.com/gorilla/sessions"

	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sealed"
)

// errUndecryptable marks a stored value that no configured key opens, or
// that does not decode: the session is treated as lost, never as an outage.
var errUndecryptable = sealed.ErrUndecryptable

// record is what one session looks like inside its encrypted value.
type record = sealed.Record

// valuesKey is where the serializer finds the record in sessions.Session.Values.
const valuesKey = "record"

// sealer is a redisstore.SessionSerializer that encrypts each value with
// package sealed (AES-256-GCM, the session ID as additional data).
type sealer struct{ *sealed.Sealer }

func newSealer(keys []session.Key) (*sealer, error) {
	s, err := sealed.New(keys)
	if err != nil {
		return nil, err
	}
	return &sealer{s}, nil
}

func (s *sealer) seal(id string, plain []byte) ([]byte, error) { return s.Seal(id, plain) }

func (s *sealer) open(id string, b []byte) ([]byte, error) { return s.Open(id, b) }

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
