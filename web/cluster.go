package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/reqlog"
)

// The replicas talk to each other over /internal/ endpoints on the compose
// network. nginx answers /internal/ with a 404, so they are not reachable
// through the load balancers; each call also carries a token derived from
// the admin password, so another container cannot use them either.

// internalTokenHeader carries the token on calls between replicas.
const internalTokenHeader = "X-Internal-Token"

// internalToken derives the token the replicas share from the admin
// password: HMAC-SHA256(password, purpose), so the password itself never
// travels.
func internalToken(password string) string {
	m := hmac.New(sha256.New, []byte(password))
	m.Write([]byte("sessiondemo internal v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// Replica states on the admin page.
const (
	stateUp          = "up"
	stateDown        = "down"
	stateNotAnswered = "not answering"
)

// replicaStatus is what the admin page knows about one replica.
type replicaStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Detail says why a replica is not up, as a phrase.
	Detail string `json:"detail,omitempty"`
	Boot   string `json:"boot,omitempty"`
	// Load counts the requests of the last minute per mode (reqlog.Modes).
	Load [3]int `json:"load"`
	// HungFor is how many seconds the replica still hangs (asked by the admin).
	HungFor int `json:"hung_for,omitempty"`
	// Sessions is how many sticky sessions the replica holds in memory.
	Sessions int `json:"sessions"`
	// Self is true for the replica that answered the admin page.
	Self bool `json:"self,omitempty"`
}

// componentStatus is a load balancer's or Redis's state.
type componentStatus struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// clusterStatus is the topology's state at one moment.
type clusterStatus struct {
	Time          time.Time         `json:"time"`
	Served        string            `json:"served_by"`
	Replicas      []replicaStatus   `json:"replicas"`
	Redis         componentStatus   `json:"redis"`
	LoadBalancers []componentStatus `json:"load_balancers"`
}

// peerLog is the answer of GET /internal/requests.
type peerLog struct {
	Replica  string         `json:"replica"`
	Boot     string         `json:"boot"`
	Entries  []reqlog.Entry `json:"entries"`
	Load     [3]int         `json:"load"`
	HungFor  int            `json:"hung_for,omitempty"`
	Sessions int            `json:"sessions"`
}

// cursor remembers how far a live view has read a replica's log.
type cursor struct {
	boot string
	seq  uint64
}

// cluster reaches this replica's log and its peers'.
type cluster struct {
	self    string
	log     *reqlog.Log
	peers   map[string]string // name -> base URL
	lbs     map[string]string // name -> host:port
	token   string
	client  *http.Client
	ping    func(context.Context) error
	local   func() peerLog
	timeout time.Duration
}

// names returns every replica's name, this one included, sorted.
func (c *cluster) names() []string {
	names := []string{c.self}
	for n := range c.peers {
		if n != c.self {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// fetchLog reads a replica's log after cur (or its newest limit entries
// when cur is from another run of it).
func (c *cluster) fetchLog(ctx context.Context, name string, cur cursor, limit int) (peerLog, error) {
	if name == c.self {
		pl := c.local()
		after := cur.seq
		if cur.boot != pl.Boot {
			after = 0
		}
		pl.Entries = c.log.After(after, limit)
		return pl, nil
	}
	base, ok := c.peers[name]
	if !ok {
		return peerLog{}, fmt.Errorf("no replica named %s", name)
	}
	q := url.Values{"boot": {cur.boot}, "after": {strconv.FormatUint(cur.seq, 10)}, "limit": {strconv.Itoa(limit)}}
	var pl peerLog
	err := c.call(ctx, http.MethodGet, base+"/internal/requests?"+q.Encode(), nil, &pl)
	return pl, err
}

// call makes one authenticated internal call and decodes its JSON answer.
func (c *cluster) call(ctx context.Context, method, u string, body any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set(internalTokenHeader, c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &httpError{resp.StatusCode, "The replica refused", e.Error}
		}
		return fmt.Errorf("answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// describeFailure turns a failed call into a state and a phrase.
func describeFailure(err error) (state, detail string) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return stateNotAnswered, "accepts connections but does not answer"
	case errors.As(err, &dnsErr):
		return stateDown, "is not running (its name does not resolve)"
	case errors.As(err, &opErr):
		return stateDown, "refuses connections"
	}
	return stateDown, "is unreachable"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// collect reads every replica's new log entries (advancing cursors, which
// may be nil for a one-off read) and the state of the topology, all in
// parallel, within the call timeout.
func (c *cluster) collect(ctx context.Context, cursors map[string]cursor, limit int) ([]reqlog.Entry, clusterStatus) {
	names := c.names()
	logs := make([]peerLog, len(names))
	errs := make([]error, len(names))
	st := clusterStatus{Time: time.Now().UTC(), Served: c.self}
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			logs[i], errs[i] = c.fetchLog(ctx, name, cursors[name], limit)
		})
	}
	wg.Go(func() {
		st.Redis = componentStatus{Name: "redis", State: stateUp}
		if c.ping == nil {
			st.Redis = componentStatus{Name: "redis", State: stateDown, Detail: "not configured"}
		} else if err := c.pingRedis(ctx); err != nil {
			st.Redis.State, st.Redis.Detail = stateDown, "does not answer PING"
		}
	})
	lbNames := make([]string, 0, len(c.lbs))
	for n := range c.lbs {
		lbNames = append(lbNames, n)
	}
	sort.Strings(lbNames)
	st.LoadBalancers = make([]componentStatus, len(lbNames))
	for i, n := range lbNames {
		wg.Go(func() {
			st.LoadBalancers[i] = componentStatus{Name: n, State: stateUp}
			d := net.Dialer{Timeout: c.timeout}
			conn, err := d.DialContext(ctx, "tcp", c.lbs[n])
			if err != nil {
				st.LoadBalancers[i].State, st.LoadBalancers[i].Detail = describeFailure(err)
				return
			}
			conn.Close()
		})
	}
	wg.Wait()
	var all []reqlog.Entry
	for i, name := range names {
		rs := replicaStatus{Name: name, State: stateUp, Self: name == c.self}
		if errs[i] != nil {
			rs.State, rs.Detail = describeFailure(errs[i])
		} else {
			pl := logs[i]
			rs.Boot, rs.Load, rs.HungFor, rs.Sessions = pl.Boot, pl.Load, pl.HungFor, pl.Sessions
			all = append(all, pl.Entries...)
			if cursors != nil {
				cur := cursor{boot: pl.Boot, seq: cursors[name].seq}
				if cursors[name].boot != pl.Boot {
					cur.seq = 0
				}
				for _, e := range pl.Entries {
					cur.seq = max(cur.seq, e.Seq)
				}
				cursors[name] = cur
			}
		}
		st.Replicas = append(st.Replicas, rs)
	}
	return all, st
}

func (c *cluster) pingRedis(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.ping(ctx)
}
