package redisstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ReplicaWatch counts the replicas of the session store's primary that the
// Sentinels see up, for Replication.Live: a write waits for every one of
// them. It asks every Sentinel every WatchEvery.
//
// Why that count is safe (see Replication for the sequence it closes):
//   - A replica is counted up when any Sentinel sees it up (not s_down
//     or o_down), in its latest answer of the last watchStale: the
//     Sentinel that leads a failover promotes only a replica it sees up,
//     and any of them may lead. "disconnected" is up: promoting a replica
//     ends the Sentinels' connections to it (CLIENT KILL TYPE normal), so
//     for a moment every Sentinel, the leader too, lists the replica it
//     just promoted as disconnected: the very node the old primary's
//     writes must wait for (seen in TestRedisSplitBrain).
//   - A replica that comes back is counted again within WatchEvery (plus
//     a Sentinel's ping, a second), while a failover that could promote
//     it needs the primary unanswering for down-after (1.5 s) first. So a
//     write the old primary takes after such a promotion waits for the
//     promoted node too, and fails. This holds while one Redis node is
//     faulted at a time; a replica that comes back while the primary is
//     already gone can be promoted before it is counted.
//   - A replica the Sentinels just promoted, which reports itself a
//     primary while they still list it as a replica of the old one, is
//     counted: that is the node the old primary's writes must wait for.
//   - The old primary is not counted while, back after a failover that
//     left it out, it is not yet a replica in sync: it reports itself a
//     primary, follows nobody, holds none of the new primary's writes, and
//     the Sentinels make it a replica only 8 s after they see it again
//     (Sentinel's SENTINEL_PUBLISH_PERIOD*4), which would stop every write
//     until then. Once a Sentinel sees it replicate (role slave, link ok)
//     it is counted again. (Right after a failover the Sentinels list it
//     as a replica before they have asked it anything: "slave" then means
//     nothing yet.) Promoting it instead of the replica that kept up
//     would take a second fault meanwhile (the Sentinels prefer the
//     replica further along).
//   - While fewer than a majority of the Sentinels have answered within
//     watchStale, it counts every replica they ever listed, up or not:
//     writes then wait for nodes that may be down (503s), rather than
//     trust a view that may be missing the Sentinel that leads the next
//     failover.
//   - Sentinels that disagree on the primary (a failover under way) list
//     the promoted node and the old primary as replicas too: the count
//     then exceeds what any primary has, and writes wait in vain until
//     they agree, a second or two. Nothing is acknowledged meanwhile.
type ReplicaWatch struct {
	sentinels []*redis.SentinelClient
	master    string

	mu sync.Mutex
	// up and known are the replica counts of the last round in which a
	// majority of the Sentinels had answered lately; known counts them up
	// or not.
	up, known int
	// answered is the last such round; zero before the first.
	answered time.Time
	// latest is each Sentinel's latest answer, and when it came.
	latest []sentinelView
	// primary is the primary the last round's Sentinels named (host:port),
	// former the nodes that were the primary before it and have not
	// reported themselves a replica since.
	primary string
	former  map[string]bool
	// log, when set, hears of every change of the count, with what the
	// Sentinels said.
	log func(msg string, args ...any)
	// said is the last count logged and why.
	said string
}

// WatchEvery is how often a ReplicaWatch asks the Sentinels. It must stay
// well below the Sentinels' down-after (REDIS_DOWN_AFTER_MS, 1.5 s).
const WatchEvery = 250 * time.Millisecond

// watchStale is how long a count stays trusted without a majority's
// answer.
const watchStale = 2 * time.Second

// NewReplicaWatch watches the replicas of the primary the Sentinels know
// as master. Call Run. log, if not nil, hears of every change of the
// count (slog's Info has its shape).
func NewReplicaWatch(sentinels []*redis.SentinelClient, master string, log func(msg string, args ...any)) *ReplicaWatch {
	return &ReplicaWatch{sentinels: sentinels, master: master, former: map[string]bool{}, log: log}
}

// Run asks the Sentinels every WatchEvery until ctx is done.
func (w *ReplicaWatch) Run(ctx context.Context) {
	t := time.NewTicker(WatchEvery)
	defer t.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Live is how many replicas a write waits for: every replica the
// Sentinels see up, or, without a majority's recent answer, every replica
// they listed. 0 before any answer: then Replication.Replicas alone
// applies.
func (w *ReplicaWatch) Live() int { return w.liveAt(time.Now()) }

func (w *ReplicaWatch) liveAt(now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.answered) > watchStale {
		return w.known
	}
	return w.up
}

// sentinelView is what one Sentinel said in one round.
type sentinelView struct {
	primary  map[string]string
	replicas []map[string]string
	err      error
	at       time.Time
}

// poll asks every Sentinel at once for the primary and its replicas.
func (w *ReplicaWatch) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*WatchEvery)
	defer cancel()
	views := make([]sentinelView, len(w.sentinels))
	var wg sync.WaitGroup
	for i, s := range w.sentinels {
		wg.Go(func() {
			v := &views[i]
			if v.primary, v.err = s.Master(ctx, w.master).Result(); v.err == nil {
				v.replicas, v.err = s.Replicas(ctx, w.master).Result()
			}
		})
	}
	wg.Wait()
	w.record(views, time.Now())
}

// record counts a round's answers, each Sentinel's latest within
// watchStale standing in for one that did not answer this round: as they
// are when a majority is that recent, else only what they add to the
// replicas known.
func (w *ReplicaWatch) record(round []sentinelView, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.latest == nil {
		w.latest = make([]sentinelView, len(round))
		for i := range w.latest {
			w.latest[i].err = errNoAnswerYet
		}
	}
	views := make([]sentinelView, len(round))
	for i, v := range round {
		if v.err == nil {
			v.at = now
			w.latest[i] = v
		}
		views[i] = w.latest[i]
		if views[i].err == nil && now.Sub(views[i].at) > watchStale {
			views[i].err = errNoAnswerYet
		}
	}
	answered, primaries := 0, map[string]int{}
	for _, v := range views {
		if v.err == nil {
			answered++
			primaries[addr(v.primary)]++
			for _, r := range v.replicas {
				if inSync(r) {
					delete(w.former, addr(r))
				}
			}
		}
	}
	if answered*2 <= len(w.sentinels) {
		_, known := countReplicas(views, w.former)
		w.known = max(w.known, known)
		return
	}
	primary := ""
	for p, n := range primaries {
		if n*2 > answered {
			primary = p
		}
	}
	if primary != "" && primary != w.primary {
		if w.primary != "" {
			w.former[w.primary] = true
		}
		delete(w.former, primary)
		w.primary = primary
	}
	w.up, w.known = countReplicas(views, w.former)
	w.answered = now
	if w.log != nil {
		if said := describeViews(views); said != w.said {
			w.said = said
			w.log("redis writes wait for the replicas the Sentinels see up", "replicas", w.up, "primary", primary, "sentinels", said)
		}
	}
}

// describeViews sums up what each Sentinel said, for the log: its
// primary and each replica's flags and reported role.
func describeViews(views []sentinelView) string {
	var b strings.Builder
	for i, v := range views {
		if i > 0 {
			b.WriteString("; ")
		}
		if v.err != nil {
			b.WriteString("no answer")
			continue
		}
		b.WriteString(addr(v.primary) + ":")
		for _, r := range v.replicas {
			b.WriteString(" " + addr(r) + "[" + r["flags"] + "," + r["role-reported"] + "]")
		}
	}
	return b.String()
}

// errNoAnswerYet marks a Sentinel that has not answered lately.
var errNoAnswerYet = errors.New("no answer from this Sentinel lately")

// countReplicas counts, over the Sentinels that answered, the replicas
// any of them sees up (but a former primary that still reports itself a
// primary) and the replicas any of them lists.
func countReplicas(views []sentinelView, former map[string]bool) (up, known int) {
	upSet, knownSet := map[string]bool{}, map[string]bool{}
	for _, v := range views {
		if v.err != nil {
			continue
		}
		for _, r := range v.replicas {
			name := addr(r)
			knownSet[name] = true
			flags := strings.Split(r["flags"], ",")
			switch {
			case slices.Contains(flags, "s_down"), slices.Contains(flags, "o_down"):
			case former[name] && !inSync(r):
			default:
				upSet[name] = true
			}
		}
	}
	return len(upSet), len(knownSet)
}

// inSync reports whether a Sentinel sees the replica replicate: it says it
// is one, and its link to its primary is up.
func inSync(r map[string]string) bool {
	return r["role-reported"] == "slave" && r["master-link-status"] == "ok"
}

// addr is the host:port a Sentinel gives a node.
func addr(m map[string]string) string { return m["ip"] + ":" + m["port"] }
