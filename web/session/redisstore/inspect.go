package redisstore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
)

// Inspect shows the request's session as Redis holds it: the encrypted
// bytes, and what this replica decrypts them to. It reads with GET, so
// looking does not refresh the session's TTL.
func (s *Store) Inspect(r *http.Request) session.Inspection {
	in := session.Inspection{Mode: session.Redis}
	c, err := session.ReadCookie(r, CookieName)
	if err != nil || c.Value == "" {
		in.Where = "This browser has no redis session yet."
		return in
	}
	if !idPattern.MatchString(c.Value) {
		in.Where = "The redis session cookie is not an ID this shop issues."
		return in
	}
	key := KeyPrefix + c.Value
	raw, err := s.client.Get(r.Context(), key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		in.Where = "Redis does not hold this session (any more): it expired or was ended."
		return in
	case err != nil:
		in.Where = "Redis cannot be reached right now, so the session cannot be shown."
		return in
	}
	ttl, _ := s.client.PTTL(r.Context(), key).Result()
	in.Held = true
	in.RawBytes = len(raw)
	shown := raw
	if len(shown) > 96 {
		shown = shown[:96]
	}
	in.Raw = hex.EncodeToString(shown)
	if len(shown) < len(raw) {
		in.Raw += "…"
	}
	keyID := ""
	if len(raw) > 2 && len(raw) >= 2+int(raw[1]) {
		keyID = string(raw[2 : 2+int(raw[1])])
	}
	in.Where = fmt.Sprintf("In Redis under session:<id>, AES-GCM encrypted with key %q (format version, key id, 12-byte nonce, ciphertext, 16-byte tag); expires in %s unless used.", keyID, ttl.Round(time.Second))
	gs := sessions.NewSession(s.rs, CookieName)
	gs.ID = c.Value
	if err := s.seal.Deserialize(raw, gs); err == nil {
		rec := gs.Values[valuesKey].(record)
		b, _ := json.MarshalIndent(struct {
			User    string    `json:"user"`
			Cart    any       `json:"cart"`
			Started time.Time `json:"started"`
			Applied int       `json:"idempotency_keys_remembered"`
		}{rec.User, rec.Lines, rec.StartedAt().UTC(), len(rec.Applied)}, "", "  ")
		in.Decoded = string(b)
	}
	return in
}
