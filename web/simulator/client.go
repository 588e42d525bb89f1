package simulator

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// products are the catalog's product IDs the clients add.
var products = []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10"}

// maxQty is the most of one product a cart line holds (cart.MaxQty); a
// client that tried to add that many of a product adds others instead.
const maxQty = 99

// addShare is the share of a session's requests (after its first, always
// an add) that are adds; the others read the cart.
const addShare = 0.7

// maxThink is the longest pause between two requests of a short or mixed
// session; maxPace the longest fixed pace of a long-session client.
const (
	maxThink = 20 * time.Millisecond
	maxPace  = 40 * time.Millisecond
)

// maxMixedLength is the longest session of the mixed profile, and
// mixedTail the exponent of its heavy (Pareto) tail: P(length >= x) = x^-tail.
const (
	maxMixedLength = 60
	mixedTail      = 1.1
)

// maxBody is the most of an answer a client reads.
const maxBody = 64 << 10

// virtualClient is one simulated shopper. It runs sessions one after the
// other; each session is a fresh browser (a new cookie jar, or in url
// affinity no jar and a sid carried in the query).
type virtualClient struct {
	id       int
	cfg      Config
	base     *http.Client
	st       *stats
	budget   *budget
	addUntil time.Time
	rng      *rand.Rand
	// pace is the fixed pause between requests of a long-session client.
	pace time.Duration
	// forwardedFor is the X-Forwarded-For this client sends, or "".
	forwardedFor string
}

func newVirtualClient(id int, cfg Config, base *http.Client, st *stats, b *budget, addUntil time.Time) *virtualClient {
	vc := &virtualClient{
		id: id, cfg: cfg, base: base, st: st, budget: b, addUntil: addUntil,
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	if cfg.Sessions == ProfileLong {
		vc.pace = time.Duration(vc.rng.Int64N(int64(maxPace) + 1))
	}
	if cfg.Affinity == session.AffinityIP {
		vc.forwardedFor = forwardedFor(id, cfg.OneAddress)
	}
	return vc
}

// forwardedFor returns the X-Forwarded-For of client id: one address for
// all with oneAddress, else an address of its own whose first three octets
// differ from every other client's (198.18.0.0/15, the range RFC 2544
// sets aside for benchmarks).
func forwardedFor(id int, oneAddress bool) string {
	if oneAddress {
		return "198.18.0.1"
	}
	return fmt.Sprintf("198.%d.%d.1", 18+id/256, id%256)
}

// run runs sessions until the run ends. Every session takes at least one
// request from the budget or ends the loop, so the loop is bounded by it.
func (vc *virtualClient) run(ctx context.Context) {
	for ctx.Err() == nil && time.Now().Before(vc.addUntil) {
		if !vc.session(ctx) {
			return
		}
	}
}

// shopSession is one session of a virtual client: its browser and what
// the server acknowledged.
type shopSession struct {
	http *http.Client
	// sid carries the session in url affinity ("" until an answer gave it).
	sid string
	// sidMissing is set once an answer lacked the sid, which is reported once.
	sidMissing bool
	// first and last name the replicas of the session's first successful
	// answer and of its latest answer.
	first, last string
	// acked counts the adds the server acknowledged, per product;
	// attempts the adds sent.
	acked, attempts map[string]int
}

// sessionLength draws how many requests a session makes before its final
// cart check; -1 means until the run ends.
func (vc *virtualClient) sessionLength() int {
	switch vc.cfg.Sessions {
	case ProfileLong:
		return -1
	case ProfileMixed:
		u := 1 - vc.rng.Float64() // (0, 1]
		return min(maxMixedLength, int(math.Pow(u, -1/mixedTail)))
	default:
		return 2 + vc.rng.IntN(4)
	}
}

// session runs one session: its requests, then a final cart check. It
// returns false when the request budget is spent.
func (vc *virtualClient) session(ctx context.Context) bool {
	// The first request and the final check are reserved together, so a
	// session that starts can always check its cart.
	if !vc.budget.take(2) {
		return false
	}
	s := &shopSession{acked: make(map[string]int), attempts: make(map[string]int)}
	c := *vc.base
	c.Jar = nil
	if vc.cfg.Affinity != session.AffinityURL {
		c.Jar, _ = cookiejar.New(nil)
	}
	s.http = &c

	length := vc.sessionLength()
	budgetLeft, complete := true, false
	for i := 0; length < 0 || i < length; i++ {
		if i > 0 {
			if !vc.think(ctx) || !time.Now().Before(vc.addUntil) {
				break
			}
			if !vc.budget.take(1) {
				budgetLeft = false
				break
			}
		}
		if i == 0 || vc.rng.Float64() < addShare {
			vc.add(ctx, s)
		} else {
			vc.do(ctx, s, "GET", "/api/cart", nil)
		}
		if i == length-1 {
			complete = true
		}
	}
	vc.check(ctx, s)
	if !complete && s.last != "" {
		vc.st.sessionLive(s.last)
	}
	return budgetLeft
}

// think pauses between two requests and reports whether the run goes on.
func (vc *virtualClient) think(ctx context.Context) bool {
	d := vc.pace
	if vc.cfg.Sessions != ProfileLong {
		d = time.Duration(vc.rng.Int64N(int64(maxThink) + 1))
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// add adds one item of a product the cart has room for, or reads the
// cart when none has.
func (vc *virtualClient) add(ctx context.Context, s *shopSession) {
	p := products[vc.rng.IntN(len(products))]
	if s.attempts[p] >= maxQty {
		vc.do(ctx, s, "GET", "/api/cart", nil)
		return
	}
	s.attempts[p]++
	body := []byte(`{"product_id":"` + p + `","qty":1}`)
	if ok, _ := vc.do(ctx, s, "POST", "/api/cart/items", body); ok {
		s.acked[p]++
	}
}

// check reads the cart at the end of a session and compares it with the
// adds the server acknowledged.
func (vc *virtualClient) check(ctx context.Context, s *shopSession) {
	ok, c := vc.do(ctx, s, "GET", "/api/cart", nil)
	if !ok {
		return
	}
	have := make(map[string]int)
	for _, it := range c.Items {
		have[it.ProductID] += it.Qty
	}
	lost := 0
	for p, n := range s.acked {
		lost += max(0, n-have[p])
	}
	vc.st.cartChecked(lost)
}

// cartAnswer is the part of a cart answer the clients read.
type cartAnswer struct {
	SID   *string `json:"sid"`
	Items []struct {
		ProductID string `json:"product_id"`
		Qty       int    `json:"qty"`
	} `json:"items"`
}

// do sends one request of the session and counts it. It reports whether
// the server answered 2xx with a cart. A request cut off by the end of the
// run is not counted.
func (vc *virtualClient) do(ctx context.Context, s *shopSession, method, path string, body []byte) (bool, cartAnswer) {
	var answer cartAnswer
	q := url.Values{"mode": {string(vc.cfg.Mode)}}
	if vc.cfg.Affinity != "" {
		q.Set("affinity", string(vc.cfg.Affinity))
	}
	if s.sid != "" {
		q.Set("sid", s.sid)
	}
	req, err := http.NewRequestWithContext(ctx, method, vc.cfg.Target+path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		vc.st.answered("", 0, fmt.Sprintf("%s %s: %v", method, path, err))
		return false, answer
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", crand.Text())
	}
	if vc.forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", vc.forwardedFor)
	}
	if vc.cfg.Naive {
		req.Header.Set("X-Write-Strategy", "naive")
	}
	began := time.Now()
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, answer // the run ended, not the server
		}
		vc.st.answered("", time.Since(began), fmt.Sprintf("%s %s: %v", method, path, err))
		return false, answer
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	took := time.Since(began)
	replica := resp.Header.Get("X-Replica")
	if replica != "" {
		s.last = replica
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return false, answer
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		vc.st.answered(replica, took, fmt.Sprintf("%s %s: %d from %s: %s", method, path, resp.StatusCode, cmp.Or(replica, "no replica"), snippet(raw)))
		return false, answer
	case err != nil:
		vc.st.answered(replica, took, fmt.Sprintf("%s %s: reading the answer: %v", method, path, err))
		return false, answer
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		vc.st.answered(replica, took, fmt.Sprintf("%s %s: %d, but the answer is not a cart: %s", method, path, resp.StatusCode, snippet(raw)))
		return false, answer
	}
	vc.st.answered(replica, took, "")
	if s.first == "" && replica != "" {
		s.first = replica
		vc.st.sessionBegan(replica)
	}
	if vc.cfg.Affinity == session.AffinityURL {
		switch {
		case answer.SID != nil && *answer.SID != "":
			s.sid = *answer.SID
		case !s.sidMissing:
			s.sidMissing = true
			vc.st.failed(fmt.Sprintf(`%s %s: the answer has no "sid" field, so this client, which keeps no cookies in url affinity, cannot carry its session to the next request.`, method, path))
		}
	}
	return true, answer
}

// snippet returns the start of an answer, on one line, for an error sample.
func snippet(raw []byte) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	if s == "" {
		return "(empty answer)"
	}
	return s
}
