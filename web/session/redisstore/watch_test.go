package redisstore

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// replica is a replica as SENTINEL REPLICAS lists it.
func replica(ip, flags, role string) map[string]string {
	return map[string]string{"ip": ip, "port": "6379", "flags": flags, "role-reported": role}
}

// view is one Sentinel's answer: the primary, well, and its replicas.
func view(primary string, replicas ...map[string]string) sentinelView {
	return sentinelView{primary: map[string]string{"ip": primary, "port": "6379", "flags": "master"}, replicas: replicas}
}

// troubled is v with its primary flagged as flags.
func troubled(v sentinelView, flags string) sentinelView {
	v.primary = map[string]string{"ip": v.primary["ip"], "port": v.primary["port"], "flags": flags}
	return v
}

func TestCountReplicas(t *testing.T) {
	views := []sentinelView{
		view("redis1", replica("redis2", "slave", "slave"), replica("redis3", "s_down,slave", "slave")),
		view("redis1", replica("redis2", "slave", "slave"), replica("redis3", "s_down,slave", "slave")),
		// A Sentinel that already follows a failover lists the old
		// primary as a replica: one more to wait for, until they agree.
		view("redis2", replica("redis3", "s_down,slave", "slave"), replica("redis1", "slave", "slave")),
	}
	if up, known := countReplicas(views, ""); up != 2 || known != 3 {
		t.Errorf("three views: up %d known %d; want 2 (redis2, redis1), 3", up, known)
	}
	// redis3 is up for the one Sentinel that sees it so: it counts.
	views[1].replicas[1] = replica("redis3", "slave", "slave")
	if up, _ := countReplicas(views, ""); up != 3 {
		t.Errorf("a replica one Sentinel sees up: up %d, want 3", up)
	}
	// Disconnected is up: every Sentinel, the leader too, lists the
	// replica it has just promoted so, for a moment (TestRedisSplitBrain).
	for i := range views {
		views[i].replicas[0] = replica("redis2", "slave,disconnected,promoted", "master")
		views[i].replicas[1] = replica("redis3", "s_down,slave", "slave")
	}
	if up, _ := countReplicas(views, ""); up != 1 {
		t.Errorf("a replica every Sentinel lists as disconnected: up %d, want 1", up)
	}
	views[1].err, views[2].err = errors.New("down"), errors.New("down")
	if up, known := countReplicas(views, ""); up != 1 || known != 2 {
		t.Errorf("one view: up %d known %d; want 1, 2", up, known)
	}
}

// The nodes that report themselves a primary while listed as a replica:
// the one the Sentinels just promoted is counted (the old primary's writes
// must wait for it, issue 31), and so is every other, but for the
// previous primary, back after the failover, while the Sentinels agree on
// the new one and see nothing amiss (they make it a replica only 8 s
// later).
func TestReplicaWatchPromotedAndPreviousPrimaries(t *testing.T) {
	w := NewReplicaWatch(make([]*redis.SentinelClient, 3), "sessions", nil)
	now := time.Unix(1_000_000, 0)
	round := func(views ...sentinelView) int {
		w.record(views, now)
		return w.liveAt(now)
	}
	settled := view("redis1", replica("redis2", "slave", "slave"), replica("redis3", "slave", "slave"))
	if got := round(settled, settled, settled); got != 2 {
		t.Fatalf("both replicas up: %d, want 2", got)
	}
	promoting := view("redis1", replica("redis2", "slave,promoted", "master"), replica("redis3", "slave", "slave"))
	leader := troubled(promoting, "master,failover_in_progress")
	if got := round(leader, promoting, promoting); got != 2 {
		t.Errorf("redis2 promoted, the Sentinels not yet switched: %d, want 2 (redis2 counted)", got)
	}
	// Right after the switch a Sentinel lists the old primary as a
	// replica before it has asked it anything: "slave", counted.
	fresh := view("redis2", replica("redis1", "slave,disconnected", "slave"), replica("redis3", "slave", "slave"))
	if got := round(fresh, fresh, fresh); got != 2 {
		t.Errorf("switched to redis2, the old primary listed but not yet asked: %d, want 2", got)
	}
	back := view("redis2", replica("redis1", "slave", "master"), replica("redis3", "slave", "slave"))
	if got := round(back, back, back); got != 1 {
		t.Errorf("switched to redis2, the old primary back and still a primary: %d, want 1", got)
	}
	if got := round(back, back, troubled(back, "master,s_down")); got != 2 {
		t.Errorf("the old primary still a primary, but a Sentinel sees redis2 down: %d, want 2", got)
	}
	converted := view("redis2", replica("redis1", "slave", "slave"), replica("redis3", "slave", "slave"))
	if got := round(converted, converted, converted); got != 2 {
		t.Errorf("the old primary a replica again: %d, want 2", got)
	}
	// Promoted in the next failover, redis1 counts as any promoted replica.
	again := view("redis2", replica("redis1", "slave,promoted", "master"), replica("redis3", "slave", "slave"))
	if got := round(troubled(again, "master,failover_in_progress"), back, back); got != 2 {
		t.Errorf("redis1, the previous primary, promoted: %d, want 2", got)
	}
	// A replica that is not the previous primary is counted whatever it
	// reports.
	odd := view("redis2", replica("redis1", "slave", "slave"), replica("redis3", "slave", "master"))
	if got := round(odd, odd, odd); got != 2 {
		t.Errorf("redis3 reports itself a primary: %d, want 2", got)
	}
}

func TestReplicaWatchLive(t *testing.T) {
	w := NewReplicaWatch(make([]*redis.SentinelClient, 3), "sessions", nil)
	now := time.Unix(1_000_000, 0)
	if got := w.liveAt(now); got != 0 {
		t.Errorf("before any answer: %d, want 0 (the minimum applies)", got)
	}
	oneUp := view("redis1", replica("redis2", "slave", "slave"), replica("redis3", "s_down,slave", "slave"))
	noneUp := view("redis1", replica("redis2", "s_down,slave", "slave"), replica("redis3", "s_down,slave", "slave"))
	down := sentinelView{err: errors.New("down")}
	w.record([]sentinelView{oneUp, oneUp, down}, now)
	if got := w.liveAt(now.Add(time.Second)); got != 1 {
		t.Errorf("a majority saw 1 of 2 up: %d, want 1", got)
	}
	// A Sentinel that did not answer this round counts with its latest
	// answer of the last watchStale: redis2 is still up for it.
	w.record([]sentinelView{noneUp, down, down}, now.Add(time.Second))
	if got := w.liveAt(now.Add(time.Second)); got != 1 {
		t.Errorf("one answer now, one a second old: %d, want 1", got)
	}
	// One Sentinel alone is not trusted, whatever it says.
	later := now.Add(watchStale + time.Second/2)
	w.record([]sentinelView{noneUp, down, down}, later)
	if got := w.liveAt(later); got != 1 {
		t.Errorf("after a minority's answer the last majority's count stays: %d, want 1", got)
	}
	if got := w.liveAt(now.Add(time.Second + watchStale + time.Millisecond)); got != 2 {
		t.Errorf("no majority for longer than %v: %d, want every replica known, 2", watchStale, got)
	}
}

func TestReplicationForRequest(t *testing.T) {
	rp := Replication{Replicas: 1, Timeout: time.Second, Live: func() int { return 2 }}
	for header, want := range map[string]string{"": "wait-2", "min": "wait-1", "MIN": "wait-1", "async": "async"} {
		r := httptest.NewRequest("POST", "/", nil)
		if header != "" {
			r.Header.Set(ReplicationHeader, header)
		}
		if got := rp.forRequest(r).String(); got != want {
			t.Errorf("%s: %q gives %s, want %s", ReplicationHeader, header, got, want)
		}
	}
	rp.Live = func() int { return 0 }
	if got := rp.forRequest(nil).String(); got != "wait-1" {
		t.Errorf("no replica up: %s, want the minimum, wait-1", got)
	}
	if got := (Replication{Live: func() int { return 2 }}).forRequest(nil).String(); got != "async" {
		t.Errorf("asynchronous by configuration: %s, want async whatever is up", got)
	}
}
