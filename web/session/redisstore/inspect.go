package redisstore

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sealed"
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
	var keyID string
	in.Raw, keyID = sealed.Shown(raw)
	in.Where = fmt.Sprintf("In Redis under session:<id>, AES-GCM encrypted with key %q (format version, key id, 12-byte nonce, ciphertext, 16-byte tag); expires in %s unless used.", keyID, ttl.Round(time.Second))
	gs := sessions.NewSession(s.rs, CookieName)
	gs.ID = c.Value
	if err := s.seal.Deserialize(raw, gs); err == nil {
		in.Decoded = gs.Values[valuesKey].(record).Indented()
	}
	return in
}
