// Package simulator drives the shop's JSON API with many virtual clients
// through a load balancer and reports how the load and the sessions spread
// over the replicas, and whether any cart lost an acknowledged add.
//
// It is a plain HTTP client (standard library only): the admin page runs it
// from a replica inside the compose network (target http://lb), the tests
// run it from the host against nginx's published port. Every run is bounded
// by a number of clients, a duration and a number of requests.
package simulator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// Bounds of a run.
const (
	// MaxClients is the most virtual clients a run may have.
	MaxClients = 200
	// MaxDuration is the longest a run may last.
	MaxDuration = 2 * time.Minute
	// MaxRequestsLimit is the most requests a run may send.
	MaxRequestsLimit = 50000
)

// Defaults a zero Config field gets (see Config.WithDefaults).
const (
	// DefaultClients is the number of virtual clients of a run that names none.
	DefaultClients = 10
	// DefaultDuration bounds a run that names no duration.
	DefaultDuration = 30 * time.Second
	// DefaultMaxRequests bounds a run that names no request budget.
	DefaultMaxRequests = 5000
)

// Session-length profiles.
const (
	// ProfileShort: every session makes 2 to 5 requests, then checks its cart.
	ProfileShort = "short"
	// ProfileMixed: session lengths are heavy-tailed, from 1 to 60 requests:
	// most are short, a few are long.
	ProfileMixed = "mixed"
	// ProfileLong: one session per client for the whole run, each client at
	// its own fixed pace.
	ProfileLong = "long"
)

// Config describes one run.
type Config struct {
	// Target is the base URL of a load balancer, e.g. "http://lb" or
	// "http://127.0.0.1:49153".
	Target string `json:"target"`
	// Clients is the number of virtual clients, 1..MaxClients (default 10).
	Clients int `json:"clients"`
	// Mode is the session mode (default session.Redis), sent as ?mode=
	// with every request.
	Mode session.Mode `json:"mode"`
	// Affinity is the sticky-mode affinity technique (default
	// session.AffinityCookie), sent as ?affinity=. Ignored in the other
	// modes.
	Affinity session.Affinity `json:"affinity,omitempty"`
	// OneAddress, with ip affinity, makes every client come from one
	// address (as every browser behind Docker's gateway does): all send the
	// same X-Forwarded-For. Otherwise each client sends its own, the
	// addresses differing in the first three octets, since nginx's ip_hash
	// keys on those. Without ip affinity no X-Forwarded-For is sent.
	OneAddress bool `json:"one_address"`
	// Sessions is the session-length profile: "short" (default), "mixed"
	// or "long" (see the Profile constants).
	Sessions string `json:"sessions"`
	// Duration bounds the run, at most MaxDuration (default 30 s).
	Duration time.Duration `json:"duration_ns"`
	// MaxRequests bounds the number of requests of the run, final cart
	// checks included, at most MaxRequestsLimit (default 5000).
	MaxRequests int `json:"max_requests"`
	// Naive asks the replicas for the naive whole-session write
	// (X-Write-Strategy: naive) on every request; redis mode only.
	Naive bool `json:"naive"`
	// Replicas optionally names the replicas behind the load balancer, so
	// that one that serves nothing counts as zero in PerReplica and the
	// max/mean ratios. By default the ratios are over the replicas that
	// answered.
	Replicas []string `json:"replicas,omitempty"`
	// Client sends the requests; optional. Each virtual client uses a copy
	// with its own cookie jar. The default has a 10 s timeout.
	Client *http.Client `json:"-"`
}

// WithDefaults returns c with every zero field that has a default set to
// it, and the target's trailing slash removed.
func (c Config) WithDefaults() Config {
	c.Target = strings.TrimRight(strings.TrimSpace(c.Target), "/")
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Mode == "" {
		c.Mode = session.Redis
	}
	if c.Mode == session.Sticky && c.Affinity == "" {
		c.Affinity = session.Affinities[0]
	}
	if c.Mode != session.Sticky {
		c.Affinity = ""
	}
	if c.Sessions == "" {
		c.Sessions = ProfileShort
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.MaxRequests == 0 {
		c.MaxRequests = DefaultMaxRequests
	}
	return c
}

// Validate checks the config as Run uses it, that is with the defaults of
// WithDefaults filled in, and says in a sentence what is wrong.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var problems []string
	u, err := url.Parse(c.Target)
	switch {
	case c.Target == "":
		problems = append(problems, `The target is missing: give the load balancer's base URL, for example "http://lb".`)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		problems = append(problems, fmt.Sprintf("The target %q is not an http:// or https:// URL with a host.", c.Target))
	case u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		problems = append(problems, fmt.Sprintf("The target %q must be a base URL only, without a path, query or fragment.", c.Target))
	}
	if c.Clients < 1 || c.Clients > MaxClients {
		problems = append(problems, fmt.Sprintf("The number of clients must be from 1 to %d, not %d.", MaxClients, c.Clients))
	}
	if _, ok := session.ParseMode(string(c.Mode)); !ok {
		problems = append(problems, fmt.Sprintf("There is no session mode %q; use %s.", c.Mode, session.Choices(session.Modes)))
	}
	if _, ok := session.ParseAffinity(string(c.Affinity)); c.Mode == session.Sticky && !ok {
		problems = append(problems, fmt.Sprintf("There is no affinity technique %q; use %s.", c.Affinity, session.Choices(session.Affinities)))
	}
	switch c.Sessions {
	case ProfileShort, ProfileMixed, ProfileLong:
	default:
		problems = append(problems, fmt.Sprintf("There is no session profile %q; use short, mixed or long.", c.Sessions))
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		problems = append(problems, fmt.Sprintf("The duration must be positive and at most %s, not %s.", MaxDuration, c.Duration))
	}
	if c.MaxRequests < 0 || c.MaxRequests > MaxRequestsLimit {
		problems = append(problems, fmt.Sprintf("The request budget must be from 1 to %d, not %d.", MaxRequestsLimit, c.MaxRequests))
	}
	if c.Naive && c.Mode != session.Redis {
		problems = append(problems, fmt.Sprintf("Naive writes exist only in redis mode, not in %s mode.", c.Mode))
	}
	for _, r := range c.Replicas {
		if r == "" {
			problems = append(problems, "A replica name in the list is empty.")
			break
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, " "))
	}
	return nil
}

// ReplicaLoad is what one replica did in a run.
type ReplicaLoad struct {
	// Replica is the replica's name, from X-Replica.
	Replica string `json:"replica"`
	// Requests is how many responses it sent.
	Requests int `json:"requests"`
	// Sessions is how many sessions began there (their first response).
	Sessions int `json:"sessions"`
	// LiveSessions is how many sessions were in progress at the end of the
	// run whose last response came from this replica.
	LiveSessions int `json:"live_sessions"`
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	// Elapsed is the time since the run started.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Requests is how many requests completed (errors included).
	Requests int `json:"requests"`
	// Errors is how many of them failed.
	Errors int `json:"errors"`
	// PerReplica is the load per replica so far, sorted by name.
	PerReplica []ReplicaLoad `json:"per_replica"`
	// Done is set on the last snapshot, when the run is over.
	Done bool `json:"done"`
}

// Carts counts the carts checked at the end of sessions.
type Carts struct {
	// Checked is how many sessions read their cart at the end.
	Checked int `json:"checked"`
	// Kept is how many of them held every add the server acknowledged.
	Kept int `json:"kept"`
	// Lost is how many of them missed at least one acknowledged add.
	Lost int `json:"lost"`
}

// Result is the outcome of a run.
type Result struct {
	// Config is the run's config, defaults filled in.
	Config Config `json:"config"`
	// Elapsed is how long the run took.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Requests is how many requests completed, with an answer or an
	// error; requests cut off by the end of the run are not counted.
	Requests int `json:"requests"`
	// Errors is how many requests failed: a transport error, a status
	// other than 2xx, or an answer the client could not use.
	Errors int `json:"errors"`
	// ErrorSamples are up to 5 different errors, e.g.
	// "POST /api/cart/items: 503 from app-2: {"error":"..."}".
	ErrorSamples []string `json:"error_samples"`
	// PerReplica is the load per replica, sorted by name. Its Requests add
	// up to Requests less the answers that named no replica (such as a 502
	// from the load balancer, or a transport error).
	PerReplica []ReplicaLoad `json:"per_replica"`
	// RequestsMaxMean is the largest number of requests one replica served
	// over the mean per replica: 1.0 is perfectly even, 3.0 is everything
	// on one of three.
	RequestsMaxMean float64 `json:"requests_max_mean"`
	// SessionsMaxMean is the same ratio for the sessions that began on each replica.
	SessionsMaxMean float64 `json:"sessions_max_mean"`
	// Carts counts the cart checks: at the end of each session the client
	// reads GET /api/cart and compares it with the adds the server
	// acknowledged.
	Carts Carts `json:"carts"`
	// LostAdds is how many acknowledged adds were missing from the carts.
	LostAdds int `json:"lost_adds"`
	// Slowest is the longest a counted request took, from sending it to
	// reading its answer (retries by the load balancer included).
	Slowest time.Duration `json:"slowest_ns"`
}

// MaxMean returns the largest count over the mean of counts (1.0 is even,
// 3.0 is all on one of three), or 0 when there are none or all are zero.
func MaxMean(counts []int) float64 {
	if len(counts) == 0 {
		return 0
	}
	total, largest := 0, 0
	for _, n := range counts {
		total += n
		largest = max(largest, n)
	}
	if total == 0 {
		return 0
	}
	return float64(largest) * float64(len(counts)) / float64(total)
}

// maxErrorSamples is how many error samples a result keeps.
const maxErrorSamples = 5

// progressEvery is how often Run reports progress, at most.
const progressEvery = 250 * time.Millisecond

// stats is what the virtual clients of a run count together.
type stats struct {
	mu       sync.Mutex
	requests int
	errors   int
	samples  []string
	replicas map[string]*ReplicaLoad
	carts    Carts
	lostAdds int
	slowest  time.Duration
}

func (s *stats) replica(name string) *ReplicaLoad {
	rl, ok := s.replicas[name]
	if !ok {
		rl = &ReplicaLoad{Replica: name}
		s.replicas[name] = rl
	}
	return rl
}

// answered counts one completed request that took took; replica is ""
// when the answer named none, problem "" when it succeeded.
func (s *stats) answered(replica string, took time.Duration, problem string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.slowest = max(s.slowest, took)
	if replica != "" {
		s.replica(replica).Requests++
	}
	if problem != "" {
		s.failedLocked(problem)
	}
}

// failed counts an error that was not a request of its own.
func (s *stats) failed(problem string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failedLocked(problem)
}

func (s *stats) failedLocked(problem string) {
	s.errors++
	if len(s.samples) < maxErrorSamples && !slices.Contains(s.samples, problem) {
		s.samples = append(s.samples, problem)
	}
}

func (s *stats) sessionBegan(replica string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replica(replica).Sessions++
}

func (s *stats) sessionLive(replica string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replica(replica).LiveSessions++
}

func (s *stats) cartChecked(lost int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.carts.Checked++
	if lost > 0 {
		s.carts.Lost++
		s.lostAdds += lost
	} else {
		s.carts.Kept++
	}
}

// perReplica returns the load per replica sorted by name; the known
// replicas are listed even when they served nothing. Call with mu held.
func (s *stats) perReplicaLocked(known []string) []ReplicaLoad {
	out := make([]ReplicaLoad, 0, len(s.replicas)+len(known))
	for _, rl := range s.replicas {
		out = append(out, *rl)
	}
	for _, name := range known {
		if _, ok := s.replicas[name]; !ok {
			out = append(out, ReplicaLoad{Replica: name})
		}
	}
	slices.SortFunc(out, func(a, b ReplicaLoad) int { return strings.Compare(a.Replica, b.Replica) })
	return slices.CompactFunc(out, func(a, b ReplicaLoad) bool { return a.Replica == b.Replica })
}

func (s *stats) progress(start time.Time, known []string, done bool) Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Progress{Elapsed: time.Since(start), Requests: s.requests, Errors: s.errors, PerReplica: s.perReplicaLocked(known), Done: done}
}

// budget hands out the run's requests, never more than its limit.
type budget struct {
	left atomic.Int64
}

// take reserves n requests and reports whether there were that many left.
func (b *budget) take(n int64) bool {
	for {
		left := b.left.Load()
		if left < n {
			return false
		}
		if b.left.CompareAndSwap(left, left-n) {
			return true
		}
	}
}

// Run runs the virtual clients of cfg until its duration has passed, its
// request budget is spent or ctx is done, whichever comes first, and
// returns what they saw. progress, if not nil, is called from one
// goroutine at most four times a second and once at the end with Done set.
// Failed requests are counted, never fatal; Run returns an error only for
// a config that does not validate.
func Run(ctx context.Context, cfg Config, progress func(Progress)) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.WithDefaults()
	httpClient := cfg.Client
	if httpClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Clients
		httpClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
	}
	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancel()
	// Sessions stop changing their carts a little before the end, so that
	// their final cart check still fits in the run.
	addUntil := start.Add(cfg.Duration - min(cfg.Duration/10, 2*time.Second))

	st := &stats{replicas: make(map[string]*ReplicaLoad)}
	b := &budget{}
	b.left.Store(int64(cfg.MaxRequests))

	reporterDone := make(chan struct{})
	stopReporter := make(chan struct{})
	go func() {
		defer close(reporterDone)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stopReporter:
				return
			case <-t.C:
				if progress != nil {
					progress(st.progress(start, cfg.Replicas, false))
				}
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range cfg.Clients {
		vc := newVirtualClient(i, cfg, httpClient, st, b, addUntil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			vc.run(runCtx)
		}()
	}
	wg.Wait()
	close(stopReporter)
	<-reporterDone
	elapsed := time.Since(start)
	final := st.progress(start, cfg.Replicas, true)
	final.Elapsed = elapsed
	if progress != nil {
		progress(final)
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	res := Result{
		Config:       cfg,
		Elapsed:      elapsed,
		Requests:     st.requests,
		Errors:       st.errors,
		ErrorSamples: slices.Clone(st.samples),
		PerReplica:   st.perReplicaLocked(cfg.Replicas),
		Carts:        st.carts,
		LostAdds:     st.lostAdds,
		Slowest:      st.slowest,
	}
	var reqs, sess []int
	for _, rl := range res.PerReplica {
		reqs = append(reqs, rl.Requests)
		sess = append(sess, rl.Sessions)
	}
	res.RequestsMaxMean = MaxMean(reqs)
	res.SessionsMaxMean = MaxMean(sess)
	return res, nil
}
