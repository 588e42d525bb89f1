package redisstore

import (
	"github.com/gorilla/sessions"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sealed"
)

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

// seal and open are Seal and Open on raw bytes, for FuzzSealOpen.
func (s *sealer) seal(id string, plain []byte) ([]byte, error) { return s.Seal(id, plain) }

func (s *sealer) open(id string, b []byte) ([]byte, error) { return s.Open(id, b) }

// Serialize encrypts the session's record (sealed.Sealer.SealRecord).
func (s *sealer) Serialize(gs *sessions.Session) ([]byte, error) {
	rec, _ := gs.Values[valuesKey].(record)
	return s.SealRecord(gs.ID, rec)
}

// Deserialize decrypts and checks a stored record (sealed.Sealer.OpenRecord):
// one that does not open, decode or pass the check is
// sealed.ErrUndecryptable, a lost session, never an outage.
func (s *sealer) Deserialize(b []byte, gs *sessions.Session) error {
	rec, err := s.OpenRecord(gs.ID, b)
	if err != nil {
		return err
	}
	gs.Values[valuesKey] = rec
	return nil
}
