package simulator

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"time"
)

// FailoverConfig configures FailoverWrites.
type FailoverConfig struct {
	// Target is a load balancer's base URL, e.g. "http://lb".
	Target string
	// Clients and Adds: each client makes this many adds, one after the
	// other. Default 8 and 25.
	Clients, Adds int
	// Async asks for asynchronous replication (X-Redis-Replication:
	// async): each add is acknowledged as soon as the primary has it.
	Async bool
	// Pace is the pause after each acknowledged add, so the run spans the
	// fault. Default 150 ms.
	Pace time.Duration
	// Fault breaks something (kills the Redis primary) once a third of
	// the adds are acknowledged; the adds go on meanwhile.
	Fault func(ctx context.Context) error
	// Client sends the requests; optional.
	Client *http.Client
}

// FailoverResult is what FailoverWrites measured. An add is sent again
// with its idempotency key until it is answered 200, for up to 30 s:
// Lost counts acknowledged adds missing from the carts at the end,
// Duplicated adds applied twice, Unanswered adds never acknowledged.
type FailoverResult struct {
	Async        bool   `json:"async"`
	Replication  string `json:"replication"` // X-Redis-Replication as answered
	Clients      int    `json:"clients"`
	Adds         int    `json:"adds"`
	Acknowledged int    `json:"acknowledged"`
	Lost         int    `json:"lost"`
	Duplicated   int    `json:"duplicated"`
	Unanswered   int    `json:"unanswered"`
	// Seen5xx and Transport count failed attempts (each was retried).
	Seen5xx   int `json:"seen_5xx"`
	Transport int `json:"transport_errors"`
	// FailingFrom and FailingUntil bound the attempts that failed, from
	// the fault; WritableAfter is when the first add after the last
	// failure was acknowledged, from the fault: how long writes were out.
	FailingFrom   time.Duration `json:"failing_from_ns"`
	FailingUntil  time.Duration `json:"failing_until_ns"`
	WritableAfter time.Duration `json:"writable_after_ns"`
}

// String sums the result up in one line.
func (r FailoverResult) String() string {
	repl := r.Replication
	if repl == "" {
		repl = map[bool]string{true: "async", false: "default"}[r.Async]
	}
	s := fmt.Sprintf("%d clients x %d adds (%s): %d acknowledged, %d lost, %d applied twice, %d never answered; %d 5xx and %d transport errors seen (each retried)",
		r.Clients, r.Adds, repl, r.Acknowledged, r.Lost, r.Duplicated, r.Unanswered, r.Seen5xx, r.Transport)
	if r.Seen5xx+r.Transport > 0 {
		s += fmt.Sprintf("; writes failed from %.1f s to %.1f s after the fault and were acknowledged again after %.1f s",
			r.FailingFrom.Seconds(), r.FailingUntil.Seconds(), r.WritableAfter.Seconds())
	}
	return s
}

// failoverClient is one browser of FailoverWrites.
type failoverClient struct {
	http     *http.Client
	expected map[string]int
	res      FailoverResult // this client's counts
	fails    []time.Time    // when failed attempts were answered
	acks     []time.Time    // when adds were acknowledged
	cart     map[string]int
	err      error
}

// FailoverWrites measures what a fault in the session store costs writes
// in redis mode: Clients browsers each make Adds keyed adds through the
// load balancer, each retried with its key until acknowledged, while
// Fault runs a third of the way in. Then every browser reads its cart and
// the adds are counted: lost, applied twice, never answered.
func FailoverWrites(ctx context.Context, cfg FailoverConfig) (FailoverResult, error) {
	if cfg.Clients == 0 {
		cfg.Clients = 8
	}
	if cfg.Adds == 0 {
		cfg.Adds = 25
	}
	if cfg.Pace == 0 {
		cfg.Pace = 150 * time.Millisecond
	}
	if cfg.Clients < 1 || cfg.Clients > 50 || cfg.Adds < 1 || cfg.Adds > 200 {
		return FailoverResult{}, errors.New("Clients must be 1 to 50 and Adds 1 to 200.")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	res := FailoverResult{Async: cfg.Async, Clients: cfg.Clients, Adds: cfg.Adds}
	clients := make([]*failoverClient, cfg.Clients)
	progress := make(chan struct{}, cfg.Clients*cfg.Adds)
	var mu sync.Mutex // guards res.Replication
	var wg sync.WaitGroup
	for c := range clients {
		jar, _ := cookiejar.New(nil)
		hc := *cfg.Client
		hc.Jar = jar
		fc := &failoverClient{http: &hc, expected: map[string]int{}}
		clients[c] = fc
		wg.Go(func() {
			for i := 0; i < cfg.Adds && ctx.Err() == nil; i++ {
				product := fmt.Sprintf("p%d", 1+(c+i)%10)
				key := "failover-" + crand.Text()[:16]
				deadline := time.Now().Add(30 * time.Second)
				acked := false
				for !acked && time.Now().Before(deadline) && ctx.Err() == nil {
					status, repl, err := fc.add(ctx, cfg.Target, product, key, cfg.Async)
					switch {
					case err != nil:
						fc.res.Transport++
						fc.fails = append(fc.fails, time.Now())
					case status >= 500:
						fc.res.Seen5xx++
						fc.fails = append(fc.fails, time.Now())
					case status == http.StatusOK:
						acked = true
						fc.acks = append(fc.acks, time.Now())
						mu.Lock()
						res.Replication = repl
						mu.Unlock()
					}
					if !acked {
						sleep(ctx, 250*time.Millisecond)
					}
				}
				if acked {
					fc.res.Acknowledged++
					fc.expected[product]++
				} else {
					fc.res.Unanswered++
				}
				progress <- struct{}{}
				sleep(ctx, cfg.Pace)
			}
			fc.cart, fc.err = fc.readCart(ctx, cfg.Target)
		})
	}
	for range cfg.Clients * cfg.Adds / 3 {
		select {
		case <-progress:
		case <-ctx.Done():
		}
	}
	faultAt := time.Now()
	var faultErr error
	if cfg.Fault != nil && ctx.Err() == nil {
		faultErr = cfg.Fault(ctx)
	}
	wg.Wait()
	if faultErr != nil {
		return res, fmt.Errorf("the fault: %w", faultErr)
	}
	var lastFail time.Time
	for _, fc := range clients {
		if fc.err != nil {
			return res, fc.err
		}
		for p, n := range fc.expected {
			if d := n - fc.cart[p]; d > 0 {
				fc.res.Lost += d
			}
		}
		for p, n := range fc.cart {
			if d := n - fc.expected[p]; d > 0 {
				fc.res.Duplicated += d
			}
		}
		res.Acknowledged += fc.res.Acknowledged
		res.Lost += fc.res.Lost
		res.Duplicated += fc.res.Duplicated
		res.Unanswered += fc.res.Unanswered
		res.Seen5xx += fc.res.Seen5xx
		res.Transport += fc.res.Transport
		for _, t := range fc.fails {
			if res.FailingFrom == 0 || t.Sub(faultAt) < res.FailingFrom {
				res.FailingFrom = t.Sub(faultAt)
			}
			if t.After(lastFail) {
				lastFail = t
			}
		}
	}
	if !lastFail.IsZero() {
		res.FailingUntil = lastFail.Sub(faultAt)
		var first time.Time
		for _, fc := range clients {
			for _, t := range fc.acks {
				if t.After(lastFail) && (first.IsZero() || t.Before(first)) {
					first = t
				}
			}
		}
		if !first.IsZero() {
			res.WritableAfter = first.Sub(faultAt)
		}
	}
	return res, ctx.Err()
}

// add sends one keyed add of product in redis mode.
func (fc *failoverClient) add(ctx context.Context, target, product, key string, async bool) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", target+"/api/cart/items?mode=redis", strings.NewReader(`{"product_id":"`+product+`"}`))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	if async {
		req.Header.Set("X-Redis-Replication", "async")
	}
	resp, err := fc.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Redis-Replication"), nil
}

// readCart reads the cart, retrying for up to 30 s while the store
// recovers.
func (fc *failoverClient) readCart(ctx context.Context, target string) (map[string]int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", target+"/api/cart?mode=redis", nil)
		if err != nil {
			return nil, err
		}
		c, err := call(fc.http, req)
		if err == nil {
			cart := map[string]int{}
			for _, it := range c.Items {
				cart[it.ProductID] += it.Qty
			}
			return cart, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("reading a cart after the adds: %w", err)
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
