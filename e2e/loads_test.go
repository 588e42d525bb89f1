package e2e

import (
	"cmp"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/simulator"
)

// The simulator's loads that run while the stack changes under them: the
// scaling events and the rolling deploy (scaling_test.go) and the rolling
// update on Swarm (swarm_test.go).

// loadMode is the mode and technique of one simulator run.
type loadMode struct {
	mode     session.Mode
	affinity session.Affinity
}

// modeLoad is one simulator run during a scaling event.
type modeLoad struct {
	mode session.Mode
	done chan struct{}

	mu   sync.Mutex
	last simulator.Progress
	res  simulator.Result
	err  error
}

// progress returns the newest progress of the run.
func (l *modeLoad) progress() simulator.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// keepAliveClient is simClient with room for conns idle connections to
// one host, so that each of that many virtual clients keeps its
// connection to nginx open, as a browser does. With http.Client's default
// of 2, most requests of 30 clients open a new connection, and the
// published port's connections churn through the local ports: on
// Swarm's address (not loopback, where Linux reuses TIME_WAIT ports) they
// ran out within a minute ("cannot assign requested address"), and on
// loopback, after the rest of the suite, 55 of 71,090 requests of a
// rolling deploy got "connection reset by peer".
func keepAliveClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &http.Client{Timeout: simClient().Timeout, Transport: tr}
}

// startModeLoads is startLoads with other modes and an HTTP client of
// the caller's.
//
// Each load is paced to at most loadBudgetShare of the simulator's request
// budget (MaxRequestsLimit) over d, so that it lasts all of d. Unpaced, a
// long-session client whose pace is near zero sends as fast as the stack
// answers: once the stack got faster (issue 14), four loads of 8 clients
// reached 50,000 requests each in about 40 s on Swarm, and a load that
// ends early no longer covers the update it is there to watch.
func startModeLoads(t *testing.T, ms []loadMode, clients int, d time.Duration, client *http.Client) []*modeLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	interval := time.Duration(float64(d) / (loadBudgetShare * simulator.MaxRequestsLimit))
	var loads []*modeLoad
	for _, m := range ms {
		l := &modeLoad{mode: m.mode, done: make(chan struct{})}
		loads = append(loads, l)
		ticker := time.NewTicker(interval)
		paced := *client
		paced.Transport = pacedTransport{next: cmp.Or[http.RoundTripper](client.Transport, http.DefaultTransport), tick: ticker.C}
		cfg := simulator.Config{
			Target: stack.lbURL, Clients: clients, Mode: m.mode, Affinity: m.affinity,
			Sessions: simulator.ProfileLong, Duration: d, MaxRequests: simulator.MaxRequestsLimit, Client: &paced,
		}
		go func() {
			defer close(l.done)
			defer ticker.Stop()
			res, err := simulator.Run(ctx, cfg, func(p simulator.Progress) {
				l.mu.Lock()
				l.last = p
				l.mu.Unlock()
			})
			l.mu.Lock()
			l.res, l.err = res, err
			l.mu.Unlock()
		}()
	}
	t.Cleanup(func() {
		cancel()
		for _, l := range loads {
			<-l.done
		}
	})
	waitFor(t, 30*time.Second, "every session of every load to have begun", func() bool {
		for _, l := range loads {
			begun := 0
			for _, rl := range l.progress().PerReplica {
				begun += rl.Sessions
			}
			if begun < clients {
				return false
			}
		}
		return true
	})
	return loads
}

// loadBudgetShare is the share of the simulator's request budget a load
// of startModeLoads may send over its duration; the rest is headroom for
// the final cart checks.
const loadBudgetShare = 0.8

// pacedTransport sends a request only on a tick of its channel: a
// time.Ticker drops the ticks nobody takes, so the requests that share it
// go at most at its rate.
type pacedTransport struct {
	next http.RoundTripper
	tick <-chan time.Time
}

// RoundTrip waits for a tick, then sends the request.
func (p pacedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case <-p.tick:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return p.next.RoundTrip(r)
}

// waitLoads waits for the runs to end and returns their results.
func waitLoads(t *testing.T, loads []*modeLoad) []simulator.Result {
	t.Helper()
	var out []simulator.Result
	for _, l := range loads {
		<-l.done
		if l.err != nil {
			t.Fatalf("%s load: %v", l.mode, l.err)
		}
		out = append(out, l.res)
	}
	return out
}
