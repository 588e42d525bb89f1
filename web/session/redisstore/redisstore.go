// Package redisstore keeps sessions in Redis: the redis mode. It wraps
// gorilla/sessions' rbcervilla/redisstore, which on its own adopts any ID a
// client sends, cannot rotate IDs, stores values in the clear and hands back
// a usable-looking empty session when Redis fails. The wrapper refuses IDs
// it did not issue, rotates IDs, encrypts values (AES-GCM, rotating keys)
// and turns every Redis failure into session.ErrUnavailable.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	rbstore "github.com/rbcervilla/redisstore/v9"
	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/sealed"
)

// CookieName is the cookie that carries a redis session's ID.
const CookieName = "redis_sid"

// KeyPrefix starts every session key in Redis.
const KeyPrefix = "session:"

// idCookie carries a redis session's ID, in redisstore's own form
// (session.RedisIDs: 64 random bytes in unpadded base32).
var idCookie = session.IDCookie{Name: CookieName, Mode: session.Redis, Format: session.RedisIDs}

// Store keeps sessions in Redis.
type Store struct {
	client   redis.UniversalClient
	rs       *rbstore.RedisStore
	seal     *sealer
	timeouts session.Timeouts
	repl     Replication
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

// RequireReplicas makes every write wait for rp.Replicas Redis replicas
// before it is acknowledged (unless its request asks for async, see
// ReplicationHeader). Call it before the store serves.
func (s *Store) RequireReplicas(rp Replication) { s.repl = rp }

// Mode returns session.Redis.
func (s *Store) Mode() session.Mode { return session.Redis }

// Describe says where sessions live.
func (s *Store) Describe() string { return "Redis (encrypted)" }

// Load reads the request's session from Redis.
func (s *Store) Load(r *http.Request) (*session.Session, error) {
	now := s.now()
	id, instead, err := idCookie.Load(r, now)
	if id == "" {
		return instead, err
	}
	// One round trip that reads the value and refreshes its TTL (GETEX),
	// so an idle timeout counts from the last request, not the last write,
	// and a read never writes. redisstore's own load is a plain GET.
	raw, err := s.client.GetEx(r.Context(), KeyPrefix+id, s.timeouts.Idle).Bytes()
	if errors.Is(err, redis.Nil) {
		// Not in Redis (expired, signed out, or never issued by us): start
		// afresh under a new ID, never the one the client sent.
		return session.New(session.EventLost, now), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: load session: %v", session.ErrUnavailable, err)
	}
	gs := sessions.NewSession(s.rs, CookieName)
	gs.ID = id
	if err := s.seal.Deserialize(raw, gs); err != nil {
		// Not ours to decrypt (a key that was rotated out, or a value
		// copied under another ID): lost, like a missing one.
		return session.New(session.EventLost, now), nil
	}
	rec := gs.Values[valuesKey].(record)
	if s.timeouts.Ended(rec.StartedAt(), now, now) {
		// Past the absolute timeout: ended, whatever the TTL said.
		s.client.Del(r.Context(), KeyPrefix+id)
		return session.New(session.EventExpired, now), nil
	}
	if ttl := s.timeouts.TTL(rec.StartedAt(), now); ttl < s.timeouts.Idle {
		// Near the absolute end the key must not outlive it.
		s.client.PExpire(r.Context(), KeyPrefix+id, ttl)
	}
	return rec.Found(id, raw, s.timeouts, now), nil
}

// Save writes the session to Redis and sets the cookie. A new session is
// written under a fresh ID in redisstore's format, only if no key has it
// (SET NX). An existing one is written, under its ID or (renewing) a new
// one, only over the state it was loaded from, in one transaction that
// also deletes the old key when renewing: a concurrent change is never
// overwritten and a renewal never leaves the session half-deleted. Either
// write then waits for the replicas the store requires.
//
// redisstore's own Save (a plain SET from the pool) cannot be followed by
// a WAIT on the same connection, so this package writes the key itself,
// with redisstore's serializer (the sealer) and ID format.
func (s *Store) Save(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	if sess.ID != "" {
		return s.saveExisting(w, r, sess)
	}
	id, err := idCookie.Format.New("")
	if err != nil {
		return err
	}
	value, err := s.serialize(id, sess)
	if err != nil {
		return err
	}
	ctx := r.Context()
	rp := s.repl.forRequest(r)
	created := false
	err = writeOnOneConnection(ctx, s.client, func(tx *redis.Tx) error {
		var err error
		if created, err = tx.SetNX(ctx, KeyPrefix+id, value, s.timeouts.TTL(sess.Started, s.now())).Result(); err != nil || !created {
			return err
		}
		return rp.wait(ctx, tx)
	})
	if err == nil && !created {
		// 64 random bytes: never, but never written over either.
		err = errors.New("a new session ID was taken")
	}
	return s.saved(w, r, sess, id, value, rp, err)
}

// serialize seals the session's record under id, as redisstore would,
// with the applied requests a session keeps (session.Timeouts.KeepApplied).
func (s *Store) serialize(id string, sess *session.Session) ([]byte, error) {
	sess.ForgetApplied(s.timeouts.AppliedSince(s.now()), session.MaxApplied)
	gs := sessions.NewSession(s.rs, CookieName)
	gs.ID = id
	gs.Values[valuesKey] = sealed.RecordOf(sess)
	return s.seal.Serialize(gs)
}

// saved finishes a write of sess under id: the cookie, the session's new
// ID and version, and the answer's ReplicationHeader. A write that reached
// the primary but not enough replicas (NotReplicatedError) is finished
// too, since the primary holds it and later requests will read it, and
// then reported: the request answers 503 and its client retries.
// (The cookie is set for the browser session: reads refresh the key's
// TTL, so the browser's copy must not expire on its own, as redisstore's
// Max-Age cookie would.)
func (s *Store) saved(w http.ResponseWriter, r *http.Request, sess *session.Session, id string, value []byte, rp Replication, err error) error {
	var notReplicated *NotReplicatedError
	switch {
	case errors.Is(err, session.ErrConflict), errors.Is(err, redis.TxFailedErr):
		return session.ErrConflict
	case err != nil && !errors.As(err, &notReplicated):
		return unavailable("save session", err)
	}
	w.Header().Set(ReplicationHeader, rp.String())
	idCookie.Set(w, r, id)
	sess.Saved(id, version(value), s.timeouts.Ends(sess.Started, s.now()))
	if notReplicated != nil {
		return &session.UnavailableError{Title: "Change not yet replicated", Message: notReplicatedMessage, Err: fmt.Errorf("save session: %w", notReplicated)}
	}
	return nil
}

// notReplicatedMessage is what a person reads when the primary took a
// write that no replica confirmed in time (NotReplicatedError).
const notReplicatedMessage = "The Redis primary has your change, but no Redis replica confirmed it in time, so it would be lost if the primary failed now. Reload to see your cart; the change is there unless the primary failed meanwhile."

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
	value, err := s.serialize(sess.ID, sess)
	if err != nil {
		return err
	}
	ctx := r.Context()
	rp := s.repl.forRequest(r)
	err = writeOnOneConnection(ctx, s.client, func(tx *redis.Tx) error {
		written, err := tx.SetXX(ctx, KeyPrefix+sess.ID, value, s.timeouts.TTL(sess.Started, s.now())).Result()
		if err != nil {
			return err
		}
		if !written {
			return session.ErrConflict
		}
		return rp.wait(ctx, tx)
	})
	return s.saved(w, r, sess, sess.ID, value, rp, err)
}

// saveExisting writes a session that is in Redis only if its stored value
// is still the one it was loaded from (WATCH, compare, MULTI ... EXEC).
// The loser of a race gets session.ErrConflict and reapplies its change;
// redisstore itself writes with one unconditional SET, the last writer
// winning.
func (s *Store) saveExisting(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	ctx := r.Context()
	oldKey := KeyPrefix + sess.ID
	id := sess.ID
	renew, _ := sess.Renewing()
	if renew {
		var err error
		if id, err = idCookie.Format.New(""); err != nil {
			return err
		}
	}
	value, err := s.serialize(id, sess)
	if err != nil {
		return err
	}
	rp := s.repl.forRequest(r)
	ttl := s.timeouts.TTL(sess.Started, s.now())
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
			p.Set(ctx, KeyPrefix+id, value, ttl)
			return nil
		})
		if err != nil {
			return err
		}
		return rp.wait(ctx, tx)
	}, oldKey)
	return s.saved(w, r, sess, id, value, rp, err)
}

var _ session.Confirmer = (*Store)(nil)

// Confirm makes sure the replicas hold the session as it was loaded
// before a replayed request reports it: a change the primary took but no
// replica confirmed (answered 503 "Change not yet replicated") is found
// by the client's retry, and must not be acknowledged then unless it is
// replicated after all. It refreshes the key's TTL (a write, so WAIT on
// the same connection waits for everything the primary took before it)
// and waits for the replicas as Save does.
func (s *Store) Confirm(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	ctx := r.Context()
	rp := s.repl.forRequest(r)
	err := writeOnOneConnection(ctx, s.client, func(tx *redis.Tx) error {
		kept, err := tx.PExpire(ctx, KeyPrefix+sess.ID, s.timeouts.TTL(sess.Started, s.now())).Result()
		if err != nil {
			return err
		}
		if !kept {
			// Ended meanwhile (signed out, expired): reload.
			return session.ErrConflict
		}
		return rp.wait(ctx, tx)
	})
	var notReplicated *NotReplicatedError
	switch {
	case errors.Is(err, session.ErrConflict):
		return err
	case errors.As(err, &notReplicated):
		return &session.UnavailableError{Title: "Change not yet replicated", Message: notReplicatedMessage, Err: fmt.Errorf("confirm session: %w", notReplicated)}
	case err != nil:
		return unavailable("confirm session", err)
	}
	w.Header().Set(ReplicationHeader, rp.String())
	return nil
}

// version names a stored value (sealed.Version).
func version(value []byte) string { return sealed.Version(value) }
