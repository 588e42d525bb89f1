package mcstore

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/sessiondemo/shop/web/session"
)

// Inspect shows the request's session as Memcached holds it: the server
// its key hashes to, the sealed bytes, and what this replica decrypts
// them to. It reads with get, so looking does not slide the expiry.
func (s *Store) Inspect(r *http.Request) session.Inspection {
	id := idCookie.Value(r)
	in, ok := idCookie.Inspect(id)
	if !ok {
		return in
	}
	key := KeyPrefix + id
	server := s.server(key)
	if server == "" {
		server = "its server"
	}
	item, err := get(func() (*memcache.Item, error) { return s.client.Get(key) })
	switch {
	case errors.Is(err, memcache.ErrCacheMiss):
		in.Where = fmt.Sprintf("%s does not hold this session (any more): it expired, was ended, was evicted, or %s restarted.", server, server)
		return in
	case err != nil:
		in.Where = server + " cannot be reached right now, so the session cannot be shown."
		return in
	}
	keyID := s.seal.Show(&in, id, item.Value)
	in.Where = fmt.Sprintf("On %s (the client hashes the key to pick one of the servers) under session:<id>, AES-GCM encrypted with key %q, as in redis mode; it expires when idle for the idle timeout, and is gone if %s restarts or evicts it.", server, keyID, server)
	return in
}
