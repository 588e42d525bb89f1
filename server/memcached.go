package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/sessiondemo/shop/web/admin"
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

// Stats reads each server's stats (the stats command, which gomemcache
// does not speak), in the order configured.
func (m *memcachedServers) Stats(ctx context.Context) []admin.MemcachedStatus {
	out := make([]admin.MemcachedStatus, len(m.names))
	var wg sync.WaitGroup
	for i, hp := range m.names {
		host, _, _ := net.SplitHostPort(hp)
		out[i] = admin.MemcachedStatus{Name: host, State: admin.StateDown}
		wg.Go(func() {
			stats, err := memcachedStats(ctx, hp)
			if err != nil {
				return
			}
			n := func(k string) int64 { v, _ := strconv.ParseInt(stats[k], 10, 64); return v }
			out[i] = admin.MemcachedStatus{Name: host, State: admin.StateUp, Items: n("curr_items"), Bytes: n("bytes"),
				LimitBytes: n("limit_maxbytes"), Evictions: n("evictions"), Uptime: n("uptime")}
		})
	}
	wg.Wait()
	return out
}

// memcachedStats asks one server for its general-purpose statistics.
func memcachedStats(ctx context.Context, hostport string) (map[string]string, error) {
	d := net.Dialer{Timeout: memcachedTimeout}
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(memcachedTimeout))
	if _, err := conn.Write([]byte("stats\r\n")); err != nil {
		return nil, err
	}
	stats := map[string]string{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "END" {
			return stats, nil
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			stats[f[1]] = f[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("stats: no END")
}

// Flush drops every item of the server at index i (flush_all), as a
// restart of it would: the scorecard's memcached-restart.
func (m *memcachedServers) Flush(ctx context.Context, i int) error {
	if i < 0 || i >= len(m.names) {
		return fmt.Errorf("there is no Memcached server %d", i)
	}
	d := net.Dialer{Timeout: memcachedTimeout}
	conn, err := d.DialContext(ctx, "tcp", m.names[i])
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(memcachedTimeout))
	if _, err := conn.Write([]byte("flush_all\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "OK" {
		return fmt.Errorf("flush_all on %s: %s", m.names[i], strings.TrimSpace(line))
	}
	return nil
}

// fillParallel is how many connections Fill writes on at once.
const fillParallel = 8

// Fill writes filler items until every server has had to evict: sized
// like sessions (values of 40 to 400 bytes; a session with a small cart is
// about 100), since Memcached keeps items in size classes and evicts
// within the class that needs room; twice what the servers' memory holds,
// or until ctx is done. Sessions not used meanwhile are at the cold end of
// the LRU and go first.
func (m *memcachedServers) Fill(ctx context.Context) (string, error) {
	before := m.Stats(ctx)
	var limit int64
	for _, s := range before {
		if s.State != admin.StateUp {
			return "", fmt.Errorf("%s does not answer", s.Name)
		}
		limit += s.LimitBytes
	}
	const avg = 300 // bytes a filler item takes, with its key and header
	total := int(2 * limit / avg)
	c := memcache.NewFromSelector(&m.list)
	c.Timeout = time.Second
	c.MaxIdleConns = fillParallel
	start := time.Now()
	var written atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range fillParallel {
		wg.Go(func() {
			value := make([]byte, 400)
			for i := w; i < total && ctx.Err() == nil; i += fillParallel {
				size := 40 + i%361
				err := c.Set(&memcache.Item{Key: fmt.Sprintf("filler:%d:%d", start.UnixNano(), i), Value: value[:size]})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				written.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return "", err
	}
	after := m.Stats(ctx)
	var evicted []string
	for i, s := range after {
		evicted = append(evicted, fmt.Sprintf("%s %+d", s.Name, s.Evictions-before[i].Evictions))
	}
	return fmt.Sprintf("Wrote %d filler items of 40 to 400 bytes in %.1f s, twice what the servers' %d MB hold. Evictions: %s. Memcached stayed up and said nothing: sessions not used meanwhile were the least recently used, and are gone. Reload a memcached-mode cart to see.",
		written.Load(), time.Since(start).Seconds(), limit>>20, strings.Join(evicted, ", ")), nil
}
