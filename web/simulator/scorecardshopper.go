package simulator

// The scorecard's shoppers (RunScorecard): what each does, and how it is
// counted into its cell.

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// shopper is one simulated browser: it adds with an idempotency key,
// retried until acknowledged, and reads its cart, until its context ends.
type shopper struct {
	cfg     ScorecardConfig
	mode    session.Mode
	http    *http.Client
	targets []string // Target, then Fallbacks
	next    int      // the target of the next request

	mu         sync.Mutex
	first      string // the replica of its first answer
	session    string // the session's hash, as the first answer named it
	lost       bool   // the server said the session was lost
	acked      map[string]int
	unanswered map[string]int // adds given up on: applied or not
	final      map[string]int // the cart at the end; nil when unread
	requests   []answer
}

// answer is one request's outcome.
type answer struct {
	end     time.Time
	took    time.Duration
	ok      bool
	failure string // what a failed request got
}

func newShopper(cfg ScorecardConfig, mode session.Mode) *shopper {
	jar, _ := cookiejar.New(nil)
	hc := *cfg.Client
	hc.Jar = jar
	return &shopper{cfg: cfg, mode: mode, http: &hc, targets: append([]string{cfg.Target}, cfg.Fallbacks...),
		acked: map[string]int{}, unanswered: map[string]int{}}
}

// shop adds and reads until ctx ends. A keyed add not yet acknowledged
// when ctx ends is sent again (at most 20 s more) by finish.
func (s *shopper) shop(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		product := products[i%len(products)]
		key := "scorecard-" + crand.Text()[:20]
		for ctx.Err() == nil {
			if ok, _ := s.do(ctx, "POST", "/api/cart/items", product, key); ok {
				s.mu.Lock()
				s.acked[product]++
				s.mu.Unlock()
				break
			}
			sleep(ctx, 250*time.Millisecond)
		}
		if ctx.Err() != nil {
			s.mu.Lock()
			s.unanswered[product]++ // maybe applied: the answer was cut off
			s.mu.Unlock()
			return
		}
		sleep(ctx, s.cfg.Pace)
		s.do(ctx, "GET", "/api/cart", "", "")
		sleep(ctx, s.cfg.Pace)
	}
}

// finish reads the cart at the end (retrying for up to 20 s while the
// stack recovers) and keeps it for addTo.
func (s *shopper) finish(ctx context.Context) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if ok, c := s.do(ctx, "GET", "/api/cart", "", ""); ok {
			s.mu.Lock()
			s.final = map[string]int{}
			for _, it := range c.Items {
				s.final[it.ProductID] += it.Qty
			}
			s.mu.Unlock()
			return
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// firstReplica is the replica that answered the shopper first.
func (s *shopper) firstReplica() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// scorecardAnswer is the part of a cart answer the shoppers read.
type scorecardAnswer struct {
	Session string `json:"session"`
	Event   string `json:"session_event"`
	Items   []struct {
		ProductID string `json:"product_id"`
		Qty       int    `json:"qty"`
	} `json:"items"`
}

// do sends one request; body is the product to add (POST) with its key.
func (s *shopper) do(ctx context.Context, method, path, product, key string) (bool, scorecardAnswer) {
	var a scorecardAnswer
	var body io.Reader
	if product != "" {
		body = strings.NewReader(`{"product_id":"` + product + `","qty":1}`)
	}
	s.mu.Lock()
	target := s.targets[s.next]
	s.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, method, target+path+"?"+url.Values{"mode": {string(s.mode)}}.Encode(), body)
	if err != nil {
		return false, a
	}
	if product != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
	}
	began := time.Now()
	resp, err := s.http.Do(req)
	if err != nil && ctx.Err() != nil {
		return false, a // the phase ended, not the server
	}
	ok := err == nil
	var replica, failure string
	if err == nil {
		raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		replica = resp.Header.Get("X-Replica")
		ok = rerr == nil && resp.StatusCode == http.StatusOK && json.Unmarshal(raw, &a) == nil
		if !ok {
			failure = fmt.Sprintf("%s %s: %d from %s: %s", method, path, resp.StatusCode, cmp.Or(replica, "no replica"), snippet(raw))
		}
	} else {
		failure = fmt.Sprintf("%s %s: %v", method, path, err)
	}
	took := time.Since(began)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, answer{end: time.Now(), took: took, ok: ok, failure: failure})
	if err != nil {
		s.next = (s.next + 1) % len(s.targets)
	}
	if !ok {
		return false, a
	}
	if s.first == "" {
		s.first = replica
	}
	switch {
	case a.Event == string(session.EventLost) || a.Event == string(session.EventExpired):
		s.lost = true
	case s.session == "" && a.Session != "":
		s.session = a.Session
	case a.Session != "" && a.Session != s.session:
		s.lost = true // another session in its place
	}
	return true, a
}

// addTo counts the shopper into its cell: faultAt is when the fault
// began (zero when it never did), victim the replica it hit.
func (s *shopper) addTo(c *Cell, faultAt time.Time, victim string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var abnormal, normalAgain time.Time
	for _, r := range s.requests {
		c.Requests++
		if !r.ok {
			c.Failed++
			if len(c.Failures) < maxFailureSamples {
				c.Failures = append(c.Failures, fmt.Sprintf("+%.1f s %s", r.end.Sub(faultAt).Seconds(), r.failure))
			}
		}
		c.LongestMS = max(c.LongestMS, r.took.Milliseconds())
		if r.took > slowAnswer {
			c.Slow++
		}
		if faultAt.IsZero() || !r.end.After(faultAt) {
			continue
		}
		if !r.ok || r.took > slowAnswer {
			abnormal, normalAgain = r.end, time.Time{}
		} else if !abnormal.IsZero() && normalAgain.IsZero() {
			normalAgain = r.end
		}
	}
	if !abnormal.IsZero() {
		back := cmp.Or(normalAgain, abnormal)
		c.RecoveryMS = max(c.RecoveryMS, back.Sub(faultAt).Milliseconds())
	}
	if s.first != "" && s.first == victim {
		c.OnVictim++
	}
	if s.lost {
		c.SessionsLost++
	}
	lost := 0
	for p, n := range s.acked {
		c.AddsAcked += n
		lost += max(0, n-s.final[p])
	}
	if s.final == nil {
		// The cart could not be read at the end: every add unaccounted.
		lost = 0
		for _, n := range s.acked {
			lost += n
		}
	}
	c.AddsLost += lost
	if !s.lost {
		c.LostInKept += lost
	}
	for p, n := range s.final {
		c.AddsDuplicated += max(0, n-s.acked[p]-s.unanswered[p])
	}
}
