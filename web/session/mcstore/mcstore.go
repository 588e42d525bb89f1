// Package mcstore keeps sessions in Memcached: the memcached mode. The
// client (github.com/bradfitz/gomemcache) spreads the keys over the
// servers by a hash of the key, so each server holds its share of the
// sessions and no other copy: Memcached has no replication and no
// persistence. Values are sealed like redis mode's (package sealed);
// concurrent writes are kept safe by compare-and-swap (gets/cas).
//
// What Memcached does that Redis does not, each shown to the person:
//   - a restarted server has lost every session it held;
//   - a full server evicts the least recently used items, sessions
//     included, while it looks healthy (there is no noeviction);
//   - a stopped server takes its share of the sessions with it; the other
//     server's share keeps working.
package mcstore

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sealed"
)

// CookieName is the cookie that carries a memcached session's ID.
const CookieName = "mc_sid"

// KeyPrefix starts every session key in Memcached.
const KeyPrefix = "session:"

// idCookie carries a memcached session's ID (session.MemcachedIDs: 32
// random bytes in unpadded base64url).
var idCookie = session.IDCookie{Name: CookieName, Mode: session.Memcached, Format: session.MemcachedIDs}

// Client is what the store needs of a Memcached client; *memcache.Client
// is one.
type Client interface {
	// GetAndTouch reads an item and sets its expiry (gat): a Load.
	GetAndTouch(key string, seconds int32) (*memcache.Item, error)
	// Get reads an item with its CAS token, leaving its expiry (gets).
	Get(key string) (*memcache.Item, error)
	// Add writes an item only if no item has its key (add).
	Add(item *memcache.Item) error
	// CompareAndSwap writes an item only if it is unchanged since Get (cas).
	CompareAndSwap(item *memcache.Item) error
	// Delete removes an item (delete).
	Delete(key string) error
}

// Store keeps sessions in Memcached.
type Store struct {
	client   Client
	seal     *sealed.Sealer
	timeouts session.Timeouts
	// server names the server a key lives on, for the page ("" unknown).
	server func(key string) string
	now    func() time.Time

	// down remembers the servers a call failed to reach lately (name to
	// until when), so that new sessions pick IDs that hash elsewhere.
	mu   sync.Mutex
	down map[string]time.Time
}

// downFor is how long a server that failed a call is avoided for new
// sessions.
const downFor = 5 * time.Second

// markDown notes that the server holding key could not be reached.
func (s *Store) markDown(key string) {
	name := s.server(key)
	if name == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == nil {
		s.down = map[string]time.Time{}
	}
	s.down[name] = s.now().Add(downFor)
}

// avoided reports whether new sessions should stay off the server that
// holds key.
func (s *Store) avoided(key string) bool {
	name := s.server(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return name != "" && s.now().Before(s.down[name])
}

var _ session.Store = (*Store)(nil)

// New returns a store over client. server, if not nil, names the server
// that holds a key (memcache.ServerList.PickServer), for messages. The
// idle timeout is the items' expiry; it must be at least a second and at
// most 30 days (Memcached reads a longer expiry as a Unix time).
func New(client Client, keys []session.Key, timeouts session.Timeouts, server func(key string) string) (*Store, error) {
	seal, err := sealed.New(keys)
	if err != nil {
		return nil, err
	}
	if timeouts.Idle < time.Second || timeouts.Idle > 30*24*time.Hour {
		return nil, fmt.Errorf("memcached session idle timeout %v: want 1s to 30 days", timeouts.Idle)
	}
	if server == nil {
		server = func(string) string { return "" }
	}
	return &Store{client: client, seal: seal, timeouts: timeouts, server: server, now: time.Now}, nil
}

// Mode returns session.Memcached.
func (s *Store) Mode() session.Mode { return session.Memcached }

// Describe says where sessions live.
func (s *Store) Describe() string { return "Memcached (encrypted)" }

// Load reads the request's session from Memcached and slides its expiry
// (gat: get and touch, one round trip).
func (s *Store) Load(r *http.Request) (*session.Session, error) {
	now := s.now()
	id, instead, err := idCookie.Load(r, now)
	if id == "" {
		return instead, err
	}
	key := KeyPrefix + id
	item, err := get(func() (*memcache.Item, error) { return s.client.GetAndTouch(key, s.expiry(s.timeouts.Idle)) })
	if errors.Is(err, memcache.ErrCacheMiss) {
		// Gone: expired, signed out, evicted, or its server restarted.
		// Memcached cannot tell which; the page says so.
		sess := session.New(session.EventLost, now)
		sess.LostFrom = s.server(key)
		return sess, nil
	}
	if err != nil {
		return nil, s.unavailable(key, "load session", err)
	}
	rec, err := s.seal.OpenRecord(id, item.Value)
	if err != nil {
		return session.New(session.EventLost, now), nil
	}
	if s.timeouts.Ended(rec.StartedAt(), now, now) {
		s.client.Delete(key)
		return session.New(session.EventExpired, now), nil
	}
	return rec.Found(id, item.Value, s.timeouts, now), nil
}

// Save writes the session and sets the cookie. A new or renewing session
// is added under a fresh ID (add: only if no item has it), and a renewal
// then deletes the old item. An existing one is written only over the
// value it was loaded from: gets (which returns the item's CAS token),
// compare with the loaded version, then cas, which Memcached refuses if
// anyone wrote the item in between. The loser gets session.ErrConflict
// and reapplies its change; nothing is lost.
func (s *Store) Save(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	renew, previous := sess.Renewing()
	if sess.ID == "" || renew {
		return s.saveNew(w, r, sess, previous)
	}
	key := KeyPrefix + sess.ID
	cur, err := get(func() (*memcache.Item, error) { return s.client.Get(key) })
	switch {
	case errors.Is(err, memcache.ErrCacheMiss):
		// Ended (or evicted) meanwhile: never bring it back.
		return session.ErrConflict
	case err != nil:
		return s.unavailable(key, "save session", err)
	case sess.Version != "" && sealed.Version(cur.Value) != sess.Version:
		return session.ErrConflict
	}
	value, err := s.sealRecord(sess.ID, sess)
	if err != nil {
		return err
	}
	cur.Value, cur.Expiration = value, s.expiry(s.timeouts.TTL(sess.Started, s.now()))
	switch err := againOnStale(func() error { return s.client.CompareAndSwap(cur) }); {
	case errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrNotStored):
		return session.ErrConflict
	case err != nil:
		return s.unavailable(key, "save session", err)
	}
	return s.saved(w, r, sess, sess.ID, value)
}

// newIDTries is how many fresh IDs a new session tries to write.
const newIDTries = 3

// staleTries bounds how often a call is made again on a stale connection
// (more than the client's idle connections per server, memcachedIdle).
const staleTries = 6

// againOnStale runs call, and again while it fails on a stale connection.
// The client keeps idle connections; after a server restarts, each of them
// belonged to the old process, and its first use fails at once (EOF,
// reset, broken pipe). A command sent on such a connection never reached
// the new process, so it is safe to send it again, a cas included. A
// server that is down fails differently (refused, timed out), and is not
// tried again.
func againOnStale(call func() error) error {
	var err error
	for try := 0; try < staleTries; try++ {
		if err = call(); !stale(err) {
			return err
		}
	}
	return err
}

// stale reports whether err is a connection that the server closed.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// get runs a read through againOnStale.
func get(read func() (*memcache.Item, error)) (*memcache.Item, error) {
	var item *memcache.Item
	err := againOnStale(func() (err error) { item, err = read(); return err })
	return item, err
}

// saveNew adds the session under a new ID and forgets previous ("" for
// none). An ID's hash picks its server: a new session takes an ID that
// hashes to a server no call failed to reach lately, and an ID whose
// server cannot be reached is given up for another. So with one of two
// servers down, new sessions go to the other one.
func (s *Store) saveNew(w http.ResponseWriter, r *http.Request, sess *session.Session, previous string) error {
	var id, key string
	var value []byte
	for try := 1; ; try++ {
		var err error
		for pick := 0; pick < 16; pick++ {
			if id, err = idCookie.Format.New(""); err != nil {
				return err
			}
			if !s.avoided(KeyPrefix + id) {
				break
			}
		}
		if value, err = s.sealRecord(id, sess); err != nil {
			return err
		}
		key = KeyPrefix + id
		item := &memcache.Item{Key: key, Value: value, Expiration: s.expiry(s.timeouts.TTL(sess.Started, s.now()))}
		err = againOnStale(func() error { return s.client.Add(item) })
		if err == nil {
			break
		}
		if errors.Is(err, memcache.ErrNotStored) {
			// 32 random bytes: never, but never written over either.
			return errors.New("a new session ID was taken")
		}
		s.markDown(key)
		if try == newIDTries || r.Context().Err() != nil {
			return s.unavailable(key, "save session", err)
		}
	}
	if previous != "" {
		// The old ID must not work again. Its server may be another one,
		// and down: the item then expires there, or is gone already.
		if err := againOnStale(func() error { return s.client.Delete(KeyPrefix + previous) }); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			s.client.Delete(key)
			return s.unavailable(KeyPrefix+previous, "forget the old session ID", err)
		}
	}
	return s.saved(w, r, sess, id, value)
}

// saved finishes a write of sess under id.
func (s *Store) saved(w http.ResponseWriter, r *http.Request, sess *session.Session, id string, value []byte) error {
	idCookie.Set(w, r, id)
	sess.Saved(id, sealed.Version(value), s.timeouts.Ends(sess.Started, s.now()))
	return nil
}

// sealRecord seals the session's record under id, with the applied
// requests a session keeps (session.Timeouts.KeepApplied).
func (s *Store) sealRecord(id string, sess *session.Session) ([]byte, error) {
	sess.ForgetApplied(s.timeouts.AppliedSince(s.now()), session.MaxApplied)
	return s.seal.SealRecord(id, sealed.RecordOf(sess))
}

// unavailable is a failed call to the server that holds key: a 503 that
// names the server, so a person sees that one server's share of the
// sessions is out of reach while the other's works.
func (s *Store) unavailable(key, what string, err error) error {
	s.markDown(key)
	where := "the Memcached server that holds your session"
	if name := s.server(key); name != "" {
		where += " (" + name + ")"
	}
	return &session.UnavailableError{
		Title:   "Session store unavailable",
		Message: "This replica cannot reach " + where + ", so it cannot show or change your cart right now; nothing was changed. Memcached spreads the sessions over its servers, each holding its share and no copy of another's: the sessions on the other server keep working. Try again in a few seconds, or switch mode.",
		Err:     fmt.Errorf("%s: %w", what, err),
	}
}

// expiry is d as Memcached's expiry: whole seconds, at least one.
func (s *Store) expiry(d time.Duration) int32 {
	return int32(max(d.Round(time.Second)/time.Second, 1))
}
