// Package redisstore keeps sessions in Redis: the redis mode. It wraps
// gorilla/sessions' rbcervilla/redisstore, which on its own adopts any ID a
// client sends, cannot rotate IDs, stores values in the clear and hands back
// a usable-looking empty session when Redis fails. The wrapper refuses IDs
// it did not issue, rotates IDs, encrypts values (AES-GCM, rotating keys)
// and turns every Redis failure into session.ErrUnavailable.
package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	rbstore "github.com/rbcervilla/redisstore/v9"
	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/cart"
	"github.com/sessiondemo/shop/web/session"
)

// CookieName is the cookie that carries a redis session's ID.
const CookieName = "redis_sid"

// KeyPrefix starts every session key in Redis.
const KeyPrefix = "session:"

// redisstore's IDs are 64 random bytes in unpadded base32.
var idPattern = regexp.MustCompile(`^[A-Z2-7]{103}$`)

// Store keeps sessions in Redis.
type Store struct {
	client   redis.UniversalClient
	rs       *rbstore.RedisStore
	seal     *sealer
	timeouts session.Timeouts
	now      func() time.Time
}

var _ session.Store = (*Store)(nil)

// New returns a store over client. Values are encrypted with keys[0]; every
// key in keys can decrypt. Sessions end after the timeouts: the key's TTL
// is the idle timeout, refreshed on every request and capped by what is
// left of the absolute one. The idle timeout must be at least a second.
func New(client redis.UniversalClient, keys []session.Key, timeouts session.Timeouts) (*Store, error) {
	seal, err := newSealer(keys)
	if err != nil {
		return nil, err
	}
	if timeouts.Idle < time.Second {
		return nil, fmt.Errorf("redis session idle timeout %v: want at least 1s", timeouts.Idle)
	}
	// NewRedisStore pings Redis; a failed ping is not fatal, since the other
	// modes must work while Redis is down and this one recovers by itself.
	rs, _ := rbstore.NewRedisStore(context.Background(), client)
	rs.KeyPrefix(KeyPrefix)
	rs.Serializer(seal)
	return &Store{client: client, rs: rs, seal: seal, timeouts: timeouts, now: time.Now}, nil
}

// Mode returns session.Redis.
func (s *Store) Mode() session.Mode { return session.Redis }

// Describe says where sessions live.
func (s *Store) Describe() string { return "Redis (encrypted)" }

// Load reads the request's session from Redis.
func (s *Store) Load(r *http.Request) (*session.Session, error) {
	now := s.now()
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return session.New(session.EventCreated, now), nil
	}
	if !idPattern.MatchString(c.Value) {
		return nil, &session.InvalidCookieError{Cookie: CookieName, Reason: "it is not a session ID this shop issues."}
	}
	// One round trip that reads the value and refreshes its TTL (GETEX),
	// so an idle timeout counts from the last request, not the last write,
	// and a read never writes. redisstore's own load is a plain GET.
	raw, err := s.client.GetEx(r.Context(), KeyPrefix+c.Value, s.timeouts.Idle).Bytes()
	if errors.Is(err, redis.Nil) {
		// Not in Redis (expired, signed out, or never issued by us): start
		// afresh under a new ID, never the one the client sent.
		return session.New(session.EventLost, now), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: load session: %v", session.ErrUnavailable, err)
	}
	gs := sessions.NewSession(s.rs, CookieName)
	gs.ID = c.Value
	if err := s.seal.Deserialize(raw, gs); err != nil {
		// Not ours to decrypt (a key that was rotated out, or a value
		// copied under another ID): lost, like a missing one.
		return session.New(session.EventLost, now), nil
	}
	rec := gs.Values[valuesKey].(record)
	if s.timeouts.Ended(rec.started(), now, now) {
		// Past the absolute timeout: ended, whatever the TTL said.
		s.client.Del(r.Context(), KeyPrefix+c.Value)
		return session.New(session.EventExpired, now), nil
	}
	if ttl := s.ttl(rec.started(), now); ttl < s.timeouts.Idle {
		// Near the absolute end the key must not outlive it.
		s.client.PExpire(r.Context(), KeyPrefix+c.Value, ttl)
	}
	return &session.Session{
		Data:    session.Data{User: rec.User, Cart: cart.Cart{Lines: rec.Lines}, Applied: rec.Applied},
		ID:      gs.ID,
		Event:   session.EventFound,
		Started: rec.started(),
		Expires: s.timeouts.Ends(rec.started(), now),
		Version: version(raw),
	}, nil
}

// Save writes the session to Redis and sets the cookie. A new session is
// written by redisstore under an ID it generates. An existing one is
// written, under its ID or (renewing) a new one, only over the state it
// was loaded from, in one transaction that also deletes the old key when
// renewing: a concurrent change is never overwritten and a renewal never
// leaves the session half-deleted.
func (s *Store) Save(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	renew, _ := sess.Renewing()
	now := s.now()
	ttl := s.ttl(sess.Started, now)
	gs := sessions.NewSession(s.rs, CookieName)
	opts := s.rsOptions(r, ttl)
	gs.Options = &opts
	gs.Values[valuesKey] = record{User: sess.User, Lines: sess.Cart.Lines, Applied: sess.Applied, Started: sess.Started.UnixMilli()}
	if sess.ID != "" {
		return s.saveExisting(w, r, sess, gs, renew, ttl)
	}
	// redisstore writes its cookie with Max-Age = the TTL; since reads
	// refresh the TTL, the browser's copy must not expire on its own, so
	// the cookie set here lasts for the browser session instead.
	if err := s.rs.Save(r, headerSink{}, gs); err != nil {
		return fmt.Errorf("%w: save session: %v", session.ErrUnavailable, err)
	}
	http.SetCookie(w, session.Cookie(r, CookieName, gs.ID, 0))
	sess.ID = gs.ID
	sess.Version = ""
	sess.Expires = s.timeouts.Ends(sess.Started, now)
	sess.Renewed()
	return nil
}

var _ session.NaiveSaver = (*Store)(nil)

// SaveNaive writes the session the way redisstore does on its own: the
// whole session with one unconditional write, whatever Redis holds by now.
// Two requests of one browser that load the same state and both save lose
// one of the two changes, the last writer winning. It is here so the demo
// can show that loss next to Save, which never loses an update; see
// session.NaiveSaver. Unlike redisstore's plain SET it writes only over a
// key that still exists (SET XX): a session ended meanwhile (sign-out,
// sign-in, expiry) is never brought back, and the request gets
// session.ErrConflict. A new or renewing session is saved by Save: a
// renewal must delete the old key in the same transaction.
func (s *Store) SaveNaive(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	if renew, _ := sess.Renewing(); renew || sess.ID == "" {
		return s.Save(w, r, sess)
	}
	now := s.now()
	ttl := s.ttl(sess.Started, now)
	gs := sessions.NewSession(s.rs, CookieName)
	gs.Values[valuesKey] = record{User: sess.User, Lines: sess.Cart.Lines, Applied: sess.Applied, Started: sess.Started.UnixMilli()}
	gs.ID = sess.ID
	value, err := s.seal.Serialize(gs)
	if err != nil {
		return err
	}
	written, err := s.client.SetXX(r.Context(), KeyPrefix+sess.ID, value, ttl).Result()
	switch {
	case err != nil:
		return fmt.Errorf("%w: save session: %v", session.ErrUnavailable, err)
	case !written:
		return session.ErrConflict
	}
	http.SetCookie(w, session.Cookie(r, CookieName, gs.ID, 0))
	sess.Version = version(value)
	sess.Expires = s.timeouts.Ends(sess.Started, now)
	return nil
}

// saveExisting writes a session that is in Redis only if its stored value
// is still the one it was loaded from (WATCH, compare, MULTI ... EXEC).
// The loser of a race gets session.ErrConflict and reapplies its change;
// redisstore itself writes with one unconditional SET, the last writer
// winning.
func (s *Store) saveExisting(w http.ResponseWriter, r *http.Request, sess *session.Session, gs *sessions.Session, renew bool, ttl time.Duration) error {
	ctx := r.Context()
	oldKey := KeyPrefix + sess.ID
	gs.ID = sess.ID
	if renew {
		id, err := newSessionID()
		if err != nil {
			return err
		}
		gs.ID = id
	}
	value, err := s.seal.Serialize(gs)
	if err != nil {
		return err
	}
	err = s.client.Watch(ctx, func(tx *redis.Tx) error {
		cur, err := tx.Get(ctx, oldKey).Bytes()
		if errors.Is(err, redis.Nil) || err == nil && sess.Version != "" && version(cur) != sess.Version {
			return session.ErrConflict
		}
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if renew {
				p.Del(ctx, oldKey)
			}
			p.Set(ctx, KeyPrefix+gs.ID, value, ttl)
			return nil
		})
		return err
	}, oldKey)
	switch {
	case errors.Is(err, session.ErrConflict), errors.Is(err, redis.TxFailedErr):
		return session.ErrConflict
	case err != nil:
		return fmt.Errorf("%w: save session: %v", session.ErrUnavailable, err)
	}
	http.SetCookie(w, session.Cookie(r, CookieName, gs.ID, 0))
	sess.ID = gs.ID
	sess.Version = version(value)
	sess.Expires = s.timeouts.Ends(sess.Started, s.now())
	sess.Renewed()
	return nil
}

// newSessionID makes an ID in redisstore's format (64 random bytes,
// unpadded base32), for renewals, which this package writes itself.
func newSessionID() (string, error) {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return strings.TrimRight(base32.StdEncoding.EncodeToString(b), "="), nil
}

// ttl is how long a session that began at started may still live, idle,
// from now: the idle timeout, or less near the absolute end (at least 1s,
// since Redis takes no shorter TTL and an ended session never gets here).
func (s *Store) ttl(started, now time.Time) time.Duration {
	ttl := s.timeouts.Ends(started, now).Sub(now)
	if ttl > s.timeouts.Idle {
		ttl = s.timeouts.Idle
	}
	return max(ttl, time.Second)
}

// version names a stored value: a short hash of its bytes (each value has
// a fresh nonce, so two saves never share one).
func version(value []byte) string {
	sum := sha256.Sum256(value)
	return hex.EncodeToString(sum[:12])
}

func (s *Store) rsOptions(r *http.Request, ttl time.Duration) sessions.Options {
	c := session.Cookie(r, CookieName, "", 0)
	return sessions.Options{
		Path:     c.Path,
		MaxAge:   int((ttl + time.Second - 1) / time.Second),
		HttpOnly: c.HttpOnly,
		Secure:   c.Secure,
		SameSite: c.SameSite,
	}
}

// headerSink is a ResponseWriter that keeps nothing; it takes redisstore's
// own Set-Cookie.
type headerSink struct{}

func (headerSink) Header() http.Header         { return http.Header{} }
func (headerSink) Write(b []byte) (int, error) { return len(b), nil }
func (headerSink) WriteHeader(int)             {}
