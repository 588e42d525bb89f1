package redisstore

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
)

// Inspect shows the request's session as Redis holds it: the encrypted
// bytes, and what this replica decrypts them to. It reads with GET, so
// looking does not refresh the session's TTL.
func (s *Store) Inspect(r *http.Request) session.Inspection {
	id := idCookie.Value(r)
	in, ok := idCookie.Inspect(id)
	if !ok {
		return in
	}
	key := KeyPrefix + id
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
	keyID := s.seal.Show(&in, id, raw)
	in.Where = fmt.Sprintf("In Redis under session:<id>, AES-GCM encrypted with key %q (format version, key id, 12-byte nonce, ciphertext, 16-byte tag); expires in %s unless used.", keyID, ttl.Round(time.Second))
	return in
}
