package simulator

import (
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

// MaxConcurrentAdds is the most adds ConcurrentAdds fires at once.
const MaxConcurrentAdds = 200

// ConcurrentResult is what ConcurrentAdds measured.
type ConcurrentResult struct {
	// Mode is the session mode measured.
	Mode session.Mode `json:"mode"`
	// Naive is set when the adds asked for the naive write (redis mode).
	Naive bool `json:"naive"`
	// Sent is the number of concurrent adds fired.
	Sent int `json:"sent"`
	// Acknowledged is how many of them the server answered with 200.
	Acknowledged int `json:"acknowledged"`
	// InCart is the quantity of p1 in the cart afterwards: Acknowledged+1
	// when nothing was lost (the first add, then the concurrent ones).
	InCart int `json:"in_cart"`
	// Replicas counts the replicas that answered the concurrent adds.
	Replicas map[string]int `json:"replicas"`
	// Statuses counts the concurrent adds' answers by status; 0 stands for
	// a transport error.
	Statuses map[int]int `json:"statuses"`
	// WriteStrategy is what the replicas reported in X-Write-Strategy
	// (redis mode), "" when they said nothing.
	WriteStrategy string `json:"write_strategy"`
}

// Lost returns how many acknowledged adds are missing from the cart.
func (r ConcurrentResult) Lost() int { return max(0, 1+r.Acknowledged-r.InCart) }

// ConcurrentAdds measures what happens to n adds of one browser sent at
// once. One browser-like client (a cookie jar; sticky mode uses cookie
// affinity) adds one p1 to create its session, then fires n adds of p1 at
// the same moment, each with the cookies the jar held before them and its
// own Idempotency-Key, and stores each answer's cookies in the jar as it
// arrives, as a browser does. Then it reads the cart: InCart is the p1
// quantity. In jwt mode the token left in the jar is the last answer's
// (the last writer wins): that is what is measured. naive asks for the
// naive whole-session write (redis mode only). client is optional.
func ConcurrentAdds(ctx context.Context, target string, mode session.Mode, n int, naive bool, client *http.Client) (ConcurrentResult, error) {
	res := ConcurrentResult{Mode: mode, Naive: naive, Sent: n, Replicas: map[string]int{}, Statuses: map[int]int{}}
	cfg := Config{Target: target, Mode: mode, Naive: naive, Clients: 1}
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	if n < 1 || n > MaxConcurrentAdds {
		return res, fmt.Errorf("The number of concurrent adds must be from 1 to %d, not %d.", MaxConcurrentAdds, n)
	}
	cfg = cfg.WithDefaults()
	base, err := url.Parse(cfg.Target)
	if err != nil {
		return res, err
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	jar, _ := cookiejar.New(nil)
	browser := *client
	browser.Jar = jar
	noJar := *client
	noJar.Jar = nil

	q := url.Values{"mode": {string(mode)}}
	if cfg.Affinity != "" {
		q.Set("affinity", string(cfg.Affinity))
	}
	endpoint := cfg.Target + "/api/cart/items?" + q.Encode()
	newAdd := func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", endpoint, strings.NewReader(`{"product_id":"p1","qty":1}`))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", crand.Text())
		if naive {
			req.Header.Set("X-Write-Strategy", "naive")
		}
		return req, nil
	}

	first, err := newAdd()
	if err != nil {
		return res, err
	}
	if _, err := call(&browser, first); err != nil {
		return res, fmt.Errorf("The first add, which creates the session, failed: %w", err)
	}

	// Every concurrent add carries the cookies the jar holds now, and none
	// is sent before all are ready.
	cookies := jar.Cookies(base)
	reqs := make([]*http.Request, n)
	for i := range reqs {
		if reqs[i], err = newAdd(); err != nil {
			return res, err
		}
		for _, c := range cookies {
			reqs[i].AddCookie(c)
		}
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		release = make(chan struct{})
	)
	for _, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			resp, err := noJar.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Statuses[0]++
				return
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
			resp.Body.Close()
			res.Statuses[resp.StatusCode]++
			if r := resp.Header.Get("X-Replica"); r != "" {
				res.Replicas[r]++
			}
			if s := resp.Header.Get("X-Write-Strategy"); s != "" {
				res.WriteStrategy = s
			}
			if resp.StatusCode == http.StatusOK {
				res.Acknowledged++
			}
			// As a browser does: the answer that arrives last sets the
			// cookies last.
			jar.SetCookies(base, resp.Cookies())
		}()
	}
	close(release)
	wg.Wait()

	read, err := http.NewRequestWithContext(ctx, "GET", cfg.Target+"/api/cart?"+q.Encode(), nil)
	if err != nil {
		return res, err
	}
	c, err := call(&browser, read)
	if err != nil {
		return res, fmt.Errorf("Reading the cart after the concurrent adds failed: %w", err)
	}
	for _, it := range c.Items {
		if it.ProductID == "p1" {
			res.InCart += it.Qty
		}
	}
	return res, nil
}

// call sends req and decodes the cart it answers with; a status other
// than 200 is an error that quotes the answer.
func call(c *http.Client, req *http.Request) (cartAnswer, error) {
	var answer cartAnswer
	resp, err := c.Do(req)
	if err != nil {
		return answer, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return answer, err
	}
	if resp.StatusCode != http.StatusOK {
		return answer, fmt.Errorf("%s %s answered %d: %s", req.Method, req.URL.Path, resp.StatusCode, snippet(raw))
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return answer, fmt.Errorf("%s %s answered 200, but not with a cart: %s", req.Method, req.URL.Path, snippet(raw))
	}
	return answer, nil
}
