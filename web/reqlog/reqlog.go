// Package reqlog is the request log the admin page shows: each replica
// keeps its own recent requests in memory (a ring buffer) and counts them
// per second, and any replica can merge its peers' logs into one view
// (see Merge). Nothing here needs Redis, so the log keeps working while
// Redis is down; a replica that restarts starts an empty log under a new
// boot id.
package reqlog

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// Entry is one request a replica served. The JSON names are the HTTP
// contract of GET /api/admin/requests.
type Entry struct {
	// ID identifies the entry across replicas and restarts:
	// "<replica>-<boot>-<seq>". A retried request has one RequestID and
	// two entries.
	ID string `json:"id"`
	// Seq orders the entries of one replica run.
	Seq          uint64           `json:"seq"`
	Time         time.Time        `json:"time"`
	RequestID    string           `json:"request_id"`
	Replica      string           `json:"replica"`
	LoadBalancer string           `json:"lb,omitempty"`
	Mode         session.Mode     `json:"mode"`
	Affinity     session.Affinity `json:"affinity"`
	Method       string           `json:"method"`
	Path         string           `json:"path"`
	Status       int              `json:"status"`
	DurationMS   float64          `json:"duration_ms"`
	// Session is a short hash of the session ID, never the ID.
	Session string `json:"session"`
	// SessionEvent is found, created, lost or expired ("" when the request
	// had no session).
	SessionEvent string `json:"session_event"`
}

// Window is how far back Load counts.
const Window = time.Minute

// Log is one replica's recent requests. Safe for concurrent use.
type Log struct {
	replica string
	boot    string
	now     func() time.Time

	mu      sync.Mutex
	entries []Entry // ring buffer
	next    int     // where the next entry goes
	seq     uint64
	// counts[s][m] counts the requests of mode session.Modes[m] in the
	// second s (Unix seconds modulo the window); stamps[s] says which
	// second that was.
	counts [60][]int
	stamps [60]int64
}

// New returns a log for the named replica that keeps the last size entries.
func New(replica string, size int) *Log {
	b := make([]byte, 3)
	rand.Read(b)
	return &Log{replica: replica, boot: hex.EncodeToString(b), now: time.Now, entries: make([]Entry, 0, size)}
}

// Boot identifies this run of the replica; it changes on every start.
func (l *Log) Boot() string { return l.boot }

// Replica is the name of the replica this log belongs to.
func (l *Log) Replica() string { return l.replica }

// Add records e, filling ID, Seq, Replica and (if zero) Time.
func (l *Log) Add(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	e.Replica = l.replica
	e.ID = l.replica + "-" + l.boot + "-" + strconv.FormatUint(l.seq, 10)
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	if len(l.entries) < cap(l.entries) {
		l.entries = append(l.entries, e)
	} else if cap(l.entries) > 0 {
		l.entries[l.next] = e
	}
	if cap(l.entries) > 0 {
		l.next = (l.next + 1) % cap(l.entries)
	}
	sec := e.Time.Unix()
	slot := sec % int64(len(l.stamps))
	if l.stamps[slot] != sec || l.counts[slot] == nil {
		l.stamps[slot], l.counts[slot] = sec, make([]int, len(session.Modes))
	}
	for i, m := range session.Modes {
		if m == e.Mode {
			l.counts[slot][i]++
		}
	}
}

// After returns up to limit entries with Seq > after, oldest first. With
// after 0 it returns the newest limit entries.
func (l *Log) After(after uint64, limit int) []Entry {
	if limit <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.entries)
	out := make([]Entry, 0, min(n, limit))
	// Oldest first: the ring starts at next once it is full.
	start := 0
	if n == cap(l.entries) {
		start = l.next
	}
	for i := range n {
		e := l.entries[(start+i)%n]
		if e.Seq > after {
			out = append(out, e)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// Load counts the requests of the last Window per mode, in session.Modes
// order.
func (l *Log) Load() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now().Unix()
	sum := make([]int, len(session.Modes))
	for slot, stamp := range l.stamps {
		if stamp > now-int64(Window/time.Second) && stamp <= now && l.counts[slot] != nil {
			for i := range sum {
				sum[i] += l.counts[slot][i]
			}
		}
	}
	return sum
}

// Merge returns the newest limit entries of several logs, newest first.
func Merge(limit int, logs ...[]Entry) []Entry {
	var all []Entry
	for _, es := range logs {
		all = append(all, es...)
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].Time.Equal(all[j].Time) {
			return all[i].Time.After(all[j].Time)
		}
		return all[i].ID > all[j].ID
	})
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}
