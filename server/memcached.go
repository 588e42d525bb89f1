package main

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// memcachedServers is the Memcached client's server list, kept current.
// gomemcache resolves each host:port once, when the list is set; a server
// container that starts again may come back at another address, so the
// list is set again every memcachedRefresh. While a name does not resolve
// (its container is stopped) the last addresses stand: requests for that
// server's share then fail to connect, a clear 503, rather than moving to
// the other server, which would lose every session of the share anyway.
type memcachedServers struct {
	list  memcache.ServerList
	names []string

	mu     sync.Mutex
	byAddr map[string]string // resolved address -> configured host:port
}

// memcachedRefresh is how often the servers' names are resolved again.
const memcachedRefresh = 2 * time.Second

// memcachedIdle is how many idle connections the client keeps per server
// (fewer than mcstore's stale tries: after a server restarts, each fails
// once).
const memcachedIdle = 4

// memcachedTimeout bounds each call to a server: an answer or a 503 well
// within the request's store budget.
const memcachedTimeout = 300 * time.Millisecond

// newMemcached returns a client over servers (host:port, in a fixed order:
// the order decides which server holds which key) and the list behind it,
// refreshed until ctx is done.
func newMemcached(ctx context.Context, servers []string, log *slog.Logger) (*memcache.Client, *memcachedServers) {
	m := &memcachedServers{names: servers, byAddr: map[string]string{}}
	if err := m.refresh(); err != nil {
		log.Warn("memcached: not every server resolves yet; memcached mode answers 503 until they do", "servers", servers, "err", err.Error())
	}
	go func() {
		t := time.NewTicker(memcachedRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.refresh()
			}
		}
	}()
	c := memcache.NewFromSelector(&m.list)
	c.Timeout = memcachedTimeout
	c.MaxIdleConns = memcachedIdle
	return c, m
}

// refresh resolves the servers' names and sets the list; on an error the
// list stays as it was.
func (m *memcachedServers) refresh() error {
	byAddr := map[string]string{}
	for _, hp := range m.names {
		addr, err := net.ResolveTCPAddr("tcp", hp)
		if err != nil {
			return err
		}
		byAddr[addr.String()] = hp
	}
	if err := m.list.SetServers(m.names...); err != nil {
		return err
	}
	m.mu.Lock()
	m.byAddr = byAddr
	m.mu.Unlock()
	return nil
}

// serverOf names the server that holds key: its host, e.g. memcached2.
func (m *memcachedServers) serverOf(key string) string {
	addr, err := m.list.PickServer(key)
	if err != nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if hp, ok := m.byAddr[addr.String()]; ok {
		host, _, _ := net.SplitHostPort(hp)
		return host
	}
	return ""
}
