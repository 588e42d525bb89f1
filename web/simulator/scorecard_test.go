package simulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// fakeShop is a shop with one session per cookie, keyed adds applied
// once, and switches that break it the ways the scorecard must see.
type fakeShop struct {
	mu       sync.Mutex
	n        int
	carts    map[string]map[string]int
	applied  map[string]bool
	dropped  map[string]bool // sessions dropped: the next answer says "lost"
	twice    bool            // apply every keyed add twice
	silently bool            // drop one item of every cart without a word
	failing  bool            // answer 503
}

func newFakeShop() *fakeShop {
	return &fakeShop{carts: map[string]map[string]int{}, applied: map[string]bool{}, dropped: map[string]bool{}}
}

func (s *fakeShop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("X-Replica", "app-2")
	if s.failing {
		http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
		return
	}
	event := "found"
	id := ""
	if c, err := r.Cookie("sid"); err == nil {
		id = c.Value
	}
	switch {
	case id == "":
		event = "created"
	case s.dropped[id]:
		delete(s.dropped, id)
		event, id = "lost", ""
	}
	if id == "" {
		s.n++
		id = fmt.Sprintf("s%d", s.n)
		s.carts[id] = map[string]int{}
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: id, Path: "/"})
	}
	cart := s.carts[id]
	if r.Method == http.MethodPost {
		var body struct {
			ProductID string `json:"product_id"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		key := id + "|" + r.Header.Get("Idempotency-Key")
		if !s.applied[key] {
			s.applied[key] = true
			cart[body.ProductID]++
			if s.twice {
				cart[body.ProductID]++
			}
		}
	}
	type item struct {
		ProductID string `json:"product_id"`
		Qty       int    `json:"qty"`
	}
	answer := struct {
		Session string `json:"session"`
		Event   string `json:"session_event"`
		Items   []item `json:"items"`
	}{Session: id, Event: event, Items: []item{}}
	for p, q := range cart {
		answer.Items = append(answer.Items, item{p, q})
	}
	json.NewEncoder(w).Encode(answer)
}

// set changes the shop under its lock.
func (s *fakeShop) set(f func(s *fakeShop)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func runCard(t *testing.T, shop *fakeShop, faults ...simulator.Fault) map[string]simulator.Cell {
	t.Helper()
	srv := httptest.NewServer(shop)
	t.Cleanup(srv.Close)
	cfg := simulator.ScorecardConfig{
		Target: srv.URL, Modes: []session.Mode{session.Sticky, session.Redis}, Faults: faults,
		Shoppers: 2, Before: 150 * time.Millisecond, During: 200 * time.Millisecond, After: 150 * time.Millisecond, Pace: 10 * time.Millisecond,
	}
	var progress []float64
	cells, err := simulator.RunScorecard(context.Background(), cfg, func(c simulator.Cell, done float64) { progress = append(progress, done) })
	if err != nil {
		t.Fatal(err)
	}
	if want := len(faults) * 2; len(cells) != want || len(progress) != want || progress[len(progress)-1] != 1 {
		t.Fatalf("%d cells, progress %v; want %d cells, ending at 1", len(cells), progress, want)
	}
	out := map[string]simulator.Cell{}
	for _, c := range cells {
		out[c.Fault+"|"+string(c.Mode)] = c
	}
	return out
}

func TestScorecardBaselineKeepsEverything(t *testing.T) {
	cells := runCard(t, newFakeShop(), simulator.Fault{Name: simulator.FaultNone})
	for _, c := range cells {
		if c.Verdict != simulator.VerdictExpected || c.AddsAcked == 0 || c.Requests == 0 || c.Sessions != 2 || c.AddsLost+c.SessionsLost+c.Failed+c.AddsDuplicated != 0 {
			t.Errorf("%s: %+v; want every add kept, as expected", c.Mode, c)
		}
	}
}

func TestScorecardSeesSessionsLostWithNotice(t *testing.T) {
	shop := newFakeShop()
	crash := simulator.Fault{Name: simulator.FaultReplicaCrash, Inject: func(ctx context.Context, victim string) (simulator.Injected, error) {
		if victim != "app-2" {
			t.Errorf("victim %q, want app-2, the replica that answered", victim)
		}
		shop.set(func(s *fakeShop) {
			for id := range s.carts {
				s.dropped[id] = true
			}
		})
		return simulator.Injected{}, nil
	}}
	cells := runCard(t, shop, crash)
	sticky, redis := cells["replica-crash|sticky"], cells["replica-crash|redis"]
	if sticky.SessionsLost != 2 || sticky.OnVictim != 2 || sticky.Verdict != simulator.VerdictExpected || sticky.LostInKept != 0 {
		t.Errorf("sticky: %+v; want both sessions lost, said so: as expected", sticky)
	}
	if redis.SessionsLost != 2 || redis.Verdict != simulator.VerdictUnexpected || !strings.Contains(redis.Why, "lost") {
		t.Errorf("redis: %+v; want the lost sessions unexpected", redis)
	}
}

func TestScorecardSeesSilentLossesAndDuplicates(t *testing.T) {
	shop := newFakeShop()
	silent := simulator.Fault{Name: simulator.FaultReplicaCrash, Inject: func(ctx context.Context, victim string) (simulator.Injected, error) {
		shop.set(func(s *fakeShop) {
			for _, cart := range s.carts {
				for p := range cart {
					cart[p]--
					break
				}
			}
		})
		return simulator.Injected{}, nil
	}}
	twice := simulator.Fault{Name: simulator.FaultNone, Inject: func(ctx context.Context, victim string) (simulator.Injected, error) {
		shop.set(func(s *fakeShop) { s.twice = true })
		return simulator.Injected{Heal: func(context.Context) error { shop.set(func(s *fakeShop) { s.twice = false }); return nil }}, nil
	}}
	cells := runCard(t, shop, silent, twice)
	if c := cells["replica-crash|sticky"]; c.LostInKept == 0 || c.Verdict != simulator.VerdictUnexpected {
		t.Errorf("sticky, an item gone without a word: %+v; want unexpected", c)
	}
	if c := cells["none|redis"]; c.AddsDuplicated == 0 || c.Verdict != simulator.VerdictUnexpected || !strings.Contains(c.Why, "twice") {
		t.Errorf("redis, adds applied twice: %+v; want unexpected", c)
	}
}

func TestScorecardMeasuresRecovery(t *testing.T) {
	shop := newFakeShop()
	outage := simulator.Fault{Name: simulator.FaultRedisPrimaryKill, Inject: func(ctx context.Context, victim string) (simulator.Injected, error) {
		shop.set(func(s *fakeShop) { s.failing = true })
		return simulator.Injected{Heal: func(context.Context) error { shop.set(func(s *fakeShop) { s.failing = false }); return nil }}, nil
	}}
	cells := runCard(t, shop, outage)
	redis, sticky := cells["redis-primary-kill|redis"], cells["redis-primary-kill|sticky"]
	if redis.Failed == 0 || redis.RecoveryMS < 150 || redis.AddsLost != 0 || redis.Verdict != simulator.VerdictExpected {
		t.Errorf("redis through an outage: %+v; want failures, a recovery of at least the outage, nothing lost: as expected", redis)
	}
	if sticky.Failed == 0 || sticky.Verdict != simulator.VerdictUnexpected {
		t.Errorf("sticky, promised unaffected, failing: %+v; want unexpected", sticky)
	}
	md := simulator.ScorecardMarkdown([]simulator.Cell{redis, sticky}, []string{simulator.FaultRedisPrimaryKill}, []session.Mode{session.Sticky, session.Redis})
	if !strings.Contains(md, "| redis-primary-kill |") || !strings.Contains(md, "**✗ ") {
		t.Errorf("markdown:\n%s", md)
	}
}
