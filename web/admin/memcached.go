package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/sessiondemo/shop/web/internal/httpx"
)

// MemcachedServers is what the admin page shows of memcached mode's
// servers, and its eviction control.
type MemcachedServers interface {
	// Stats reads each server's stats, in the order configured; a server
	// that does not answer is StateDown.
	Stats(ctx context.Context) []MemcachedStatus
	// Fill writes filler items, sized like sessions, until the servers
	// have had to evict, and says what it did.
	Fill(ctx context.Context) (string, error)
	// Flush drops every item of the i-th server, as its restart would.
	Flush(ctx context.Context, i int) error
}

// MemcachedStatus is one Memcached server as its stats show it.
type MemcachedStatus struct {
	// Name is the server's compose service, e.g. "memcached2".
	Name string `json:"name"`
	// State is StateUp or StateDown.
	State string `json:"state"`
	// Items is how many items it holds (curr_items).
	Items int64 `json:"items"`
	// Bytes is the memory its items use; LimitBytes its limit (-m).
	Bytes      int64 `json:"bytes"`
	LimitBytes int64 `json:"limit_bytes"`
	// Evictions is how many items it dropped to make room since it started.
	Evictions int64 `json:"evictions"`
	// Uptime is how long it has run, in seconds: a restart sets it back.
	Uptime int64 `json:"uptime_s"`
}

// Detail says the server's state in a phrase, for its card.
func (m MemcachedStatus) Detail() string {
	if m.State != StateUp {
		return "does not answer"
	}
	return fmt.Sprintf("%d items · %.1f of %d MB · %d evictions · up %ds", m.Items, float64(m.Bytes)/(1<<20), m.LimitBytes>>20, m.Evictions, m.Uptime)
}

// handleMemcachedFill serves POST /api/admin/memcached/fill.
func (a *App) handleMemcachedFill(w http.ResponseWriter, r *http.Request) {
	if a.o.Memcached == nil {
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusNotImplemented, Title: "Not available", Message: "This replica has no Memcached servers (MEMCACHED_SERVERS)."})
		return
	}
	msg, err := a.o.Memcached.Fill(r.Context())
	if err != nil {
		a.logger.Warn("memcached fill", "request_id", httpx.InfoOf(r).RequestID, "err", err)
		httpx.WriteError(w, r, a.logger, &httpx.Error{Status: http.StatusBadGateway, Title: "Fill stopped", Message: "Filling Memcached stopped: " + httpx.Truncate(strings.TrimSpace(err.Error()), 200) + "."})
		return
	}
	a.logger.Info("admin control", "request_id", httpx.InfoOf(r).RequestID, "control", "memcached-fill")
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"message": msg})
}
