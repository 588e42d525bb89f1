package admin

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/internal/httpx"
)

// Admin sign-outs, kept by every replica. An admin cookie is signed, so
// any replica can check it without asking anyone; to end one before its
// hour is up, the replica that signs it out tells every other replica its
// sign-in ID, and each refuses that ID until the cookie would have
// expired anyway.
//
//   - The telling is retried, every signoutRetry, for each replica that did
//     not answer (paused, cut off), until it answers or the cookie expires.
//   - A replica that starts (a new one, or one that crashed and forgot)
//     asks the others for their list first, and accepts no admin cookie
//     until it has, or until it is clear there is no one to learn from:
//     no other replica listed after noPeersWithin, or none answering
//     within learnWithin. A request with an admin cookie waits for that
//     at most cookieWait, and is refused meanwhile (the page shows the
//     sign-in form: the honest answer while the replica cannot tell).
//
// No store is involved, so signing out works while Redis is down, which
// is when the admin page is needed most.

const (
	signoutRetry  = 2 * time.Second
	learnWithin   = 5 * time.Second
	noPeersWithin = 500 * time.Millisecond
	cookieWait    = time.Second
)

// signouts is the sign-in IDs ended before their cookie expires.
type signouts struct {
	mu  sync.Mutex
	ids map[string]time.Time
	// learned is closed once this replica has the other replicas' list.
	learned chan struct{}
	once    sync.Once
}

func newSignouts() *signouts {
	return &signouts{ids: map[string]time.Time{}, learned: make(chan struct{})}
}

// signout is one ended sign-in, as the replicas exchange it.
type signout struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// add records an ended sign-in until exp.
func (s *signouts) add(id string, exp time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, e := range s.ids {
		if !now.Before(e) {
			delete(s.ids, k)
		}
	}
	if now.Before(exp) && len(s.ids) < 100000 {
		s.ids[id] = exp
	}
}

// ended reports whether the sign-in id was ended.
func (s *signouts) ended(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

// list returns the sign-ins ended and not yet expired.
func (s *signouts) list() []signout {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := []signout{}
	for id, exp := range s.ids {
		if now.Before(exp) {
			out = append(out, signout{ID: id, Expires: exp})
		}
	}
	return out
}

// knowsAll reports whether this replica has learned the others' list,
// waiting for it at most cookieWait while it starts.
func (s *signouts) knowsAll() bool {
	select {
	case <-s.learned:
		return true
	default:
	}
	t := time.NewTimer(cookieWait)
	defer t.Stop()
	select {
	case <-s.learned:
		return true
	case <-t.C:
		return false
	}
}

// learnSignouts asks the other replicas for their sign-outs, once, as
// this replica starts.
func (a *App) learnSignouts() {
	defer a.signouts.once.Do(func() { close(a.signouts.learned) })
	start := time.Now()
	deadline := start.Add(learnWithin)
	for time.Now().Before(deadline) {
		var others []string
		for _, name := range a.peers.Names() {
			if name != a.o.Replica {
				others = append(others, name)
			}
		}
		answered := 0
		for _, name := range others {
			var got []signout
			if err := a.peers.Call(context.Background(), name, http.MethodGet, "/internal/admin-signouts", nil, &got); err != nil {
				continue
			}
			answered++
			for _, so := range got {
				a.signouts.add(so.ID, so.Expires)
			}
		}
		// Peers found through DNS appear within moments of the start.
		if answered > 0 || (len(others) == 0 && time.Since(start) >= noPeersWithin) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	a.logger.Warn("no other replica told this one its admin sign-outs; admin cookies are accepted from now on")
}

// endSignIn ends the sign-in id here and on every other replica, retrying
// those that do not answer until the cookie would have expired.
func (a *App) endSignIn(id string, exp time.Time) {
	a.signouts.add(id, exp)
	a.tellEveryReplica("admin sign-out", "/internal/admin-signouts", signout{ID: id, Expires: exp}, exp, nil)
}

// tellEveryReplica posts body to path on every other replica, and keeps
// posting to those that did not answer, every signoutRetry, until they do
// or until until. answered, if not nil, gets each answer the first round
// brings. It returns the replicas the first round did not reach.
func (a *App) tellEveryReplica(what, path string, body any, until time.Time, answered func(name string, out map[string]any)) (missing []string) {
	told := map[string]bool{a.o.Replica: true}
	// Every replica at once: a sign-out must answer well within nginx's
	// 1.5 s, even with several replicas frozen (each call waits up to
	// peerTimeout).
	tell := func(first bool) (missing []string) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range a.peers.Names() {
			if told[name] {
				continue
			}
			wg.Go(func() {
				var out map[string]any
				err := a.peers.Call(context.Background(), name, http.MethodPost, path, body, &out)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					missing = append(missing, name)
					return
				}
				told[name] = true
				if first && answered != nil {
					answered(name, out)
				}
			})
		}
		wg.Wait()
		sort.Strings(missing)
		return missing
	}
	missing = tell(true)
	if len(missing) == 0 {
		return nil
	}
	a.logger.Warn(what+": some replicas did not answer; telling them again until they do", "replicas", missing)
	go func() {
		for left := missing; len(left) > 0 && time.Now().Before(until); {
			time.Sleep(signoutRetry)
			left = tell(false)
		}
	}()
	return missing
}

// handleInternalSignouts serves GET /internal/admin-signouts: this
// replica's list, for a replica that starts.
func (a *App) handleInternalSignouts(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, a.signouts.list())
}

// handleInternalSignout serves POST /internal/admin-signouts: another
// replica ended a sign-in.
func (a *App) handleInternalSignout(w http.ResponseWriter, r *http.Request) {
	var so signout
	if err := httpx.DecodeJSON(w, r, &so); err != nil {
		httpx.WriteError(w, r, a.logger, err)
		return
	}
	if so.ID == "" || len(so.ID) > 64 || so.Expires.After(time.Now().Add(cookieLife+time.Minute)) {
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusBadRequest, Title: "Bad sign-out", Message: "A sign-out needs an ID and an expiry within the cookie's lifetime."})
		return
	}
	a.signouts.add(so.ID, so.Expires)
	w.WriteHeader(http.StatusNoContent)
}
