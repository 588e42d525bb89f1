package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/internal/httpx"
	"github.com/sessiondemo/shop/web/reqlog"
)

// maxLogLimit bounds ?limit= of the request log.
const maxLogLimit = 1000

// eventInterval is how often the live view polls the replicas.
const eventInterval = 500 * time.Millisecond

// maxEventStream bounds one event stream; the browser reconnects by itself.
const maxEventStream = 10 * time.Minute

// maxEventStreams bounds the live views one replica serves at once: each
// polls every replica twice a second. maxEventStreamsPerAddress bounds
// those of one client address, so one page (or script) that opens many
// cannot lock every other person out of the live view.
const (
	maxEventStreams           = 64
	maxEventStreamsPerAddress = 4
)

// streamCounter counts the open event streams, in all and per address.
type streamCounter struct {
	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

// open takes a place for a stream from addr; "" when there is one, else
// the sentence that says why not. The caller closes a place it got.
func (c *streamCounter) open(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.byAddr[addr] >= maxEventStreamsPerAddress:
		return fmt.Sprintf("Your address already has %d live views open on this replica; close one (another tab of the admin page) or try again later.", maxEventStreamsPerAddress)
	case c.total >= maxEventStreams:
		return fmt.Sprintf("This replica already streams to %d admin pages; close one or try again later.", maxEventStreams)
	}
	if c.byAddr == nil {
		c.byAddr = map[string]int{}
	}
	c.byAddr[addr]++
	c.total++
	return ""
}

// close gives back addr's place.
func (c *streamCounter) close(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.byAddr[addr]--; c.byAddr[addr] <= 0 {
		delete(c.byAddr, addr)
	}
}

// localLog is this replica's answer to GET /internal/requests, without entries.
func (a *App) localLog() peerLog {
	pl := peerLog{Replica: a.o.Replica, Boot: a.log.Boot(), Started: a.started, Load: a.log.Load(), HungFor: a.hungFor()}
	if a.o.Memory != nil {
		pl.Sessions = a.o.Memory.Len()
	}
	return pl
}

// handleRequests serves GET /api/admin/requests?limit=N: the request log
// of every replica that answers, newest first.
func (a *App) handleRequests(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogLimit {
			httpx.WriteError(w, r, a.logger, httpx.BadRequest(fmt.Sprintf("limit must be a whole number from 1 to %d.", maxLogLimit)))
			return
		}
		limit = n
	}
	entries, _ := a.cluster.collect(r.Context(), nil, limit)
	out := reqlog.Merge(limit, entries)
	if out == nil {
		out = []reqlog.Entry{}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// handleStatus serves GET /api/admin/status: the topology's state.
func (a *App) handleStatus(w http.ResponseWriter, r *http.Request) {
	_, st := a.cluster.collect(r.Context(), nil, 0)
	httpx.WriteJSON(w, http.StatusOK, st)
}

// handleEvents serves GET /api/admin/events, the live view as Server-Sent
// Events: "status" with the topology twice a second, and "requests" with
// the log entries that are new since the last event, oldest first. The
// first "requests" event carries the newest 100. If this replica dies,
// the browser reconnects through nginx to another one, which starts over;
// entry IDs let the page drop what it has already shown.
func (a *App) handleEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	addr := clientAddr(r)
	if why := a.streams.open(addr); why != "" {
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusTooManyRequests, Title: "Too many live views", Message: why})
		return
	}
	defer a.streams.close(addr)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// nginx must pass each event on at once instead of buffering.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n\n")
	ctx, cancel := context.WithTimeout(r.Context(), maxEventStream)
	defer cancel()
	cursors := map[string]cursor{}
	limit := 100
	t := time.NewTicker(eventInterval)
	defer t.Stop()
	for {
		entries, st := a.cluster.collect(ctx, cursors, limit)
		limit = 500
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := writeEvent(w, "status", st); err != nil {
			return
		}
		if len(entries) > 0 {
			merged := reqlog.Merge(len(entries), entries)
			for i, j := 0, len(merged)-1; i < j; i, j = i+1, j-1 {
				merged[i], merged[j] = merged[j], merged[i]
			}
			if err := writeEvent(w, "requests", merged); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-a.stopping:
			return // the page reconnects (retry: 1000) to a replica that stays
		case <-t.C:
		}
	}
}

func writeEvent(w http.ResponseWriter, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	return err
}

// handleInternalRequests serves GET /internal/requests to the other
// replicas: this replica's log after a sequence number of a given run.
func (a *App) handleInternalRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	if q.Get("boot") != a.log.Boot() {
		after = 0
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 0 || limit > maxLogLimit {
		limit = 100
	}
	pl := a.localLog()
	pl.Entries = a.log.After(after, limit)
	httpx.WriteJSON(w, http.StatusOK, pl)
}
