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
//   - One node is not counted: the previous primary, back after the
//     failover that replaced it, while it still reports itself a primary
//     and the Sentinels all agree on the new one and see nothing amiss
//     (no failover under way, no node promoted, the primary not down). It
//     follows nobody and holds none of the new primary's writes, and the
//     Sentinels make it a replica only 8 s after they see it again
//     (Sentinel's SENTINEL_PUBLISH_PERIOD*4): counting it would stop every
//     write until then. Nothing else is left out, not even for a moment: a
//     replica the Sentinels cannot be sure of may be the one they promote
//     next, and the Sentinels' choice between two replicas rests on
//     offsets they read up to seconds before (seen in the soak: a replica
//     left out for 10 s was promoted without the writes its peer alone had
//     acknowledged).
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
	// previous the one before it ("" while unknown).
	primary, previous string
	// log, when set, hears of every change in what the Sentinels say,
	// with the count.
	log func(msg string, args ...any)
	// said is what they said when log last heard.
	said string
}

// WatchEvery is how often a ReplicaWatch asks the Sentinels. It must stay
// well below the Sentinels' down-after (REDIS_DOWN_AFTER, 1.5 s).
const WatchEvery = 250 * time.Millisecond

// watchStale is how long a count stays trusted without a majority's
// answer.
const watchStale = 2 * time.Second

// NewReplicaWatch watches the replicas of the primary the Sentinels know
// as master. Call Run. log, if not nil, hears of every change in what the
// Sentinels say, with the count (slog's Info has its shape): a failover
// in the replicas' logs, step by step.
func NewReplicaWatch(sentinels []*redis.SentinelClient, master string, log func(msg string, args ...any)) *ReplicaWatch {
	return &ReplicaWatch{sentinels: sentinels, master: master, log: log}
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
		}
	}
	if answered*2 <= len(w.sentinels) {
		_, known := countReplicas(views, "")
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
		w.previous, w.primary = w.primary, primary
	}
	leftOut := ""
	if settled(views, primary) {
		leftOut = w.previous
	}
	w.up, w.known = countReplicas(views, leftOut)
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
		b.WriteString(addr(v.primary) + "[" + v.primary["flags"] + "]:")
		for _, r := range v.replicas {
			b.WriteString(" " + addr(r) + "[" + r["flags"] + "," + r["role-reported"] + "]")
		}
	}
	return b.String()
}

// errNoAnswerYet marks a Sentinel that has not answered lately.
var errNoAnswerYet = errors.New("no answer from this Sentinel lately")

// settled reports whether every Sentinel that answered names primary and
// sees nothing amiss: the primary not down and in no failover, no replica
// promoted or being pointed elsewhere.
func settled(views []sentinelView, primary string) bool {
	for _, v := range views {
		if v.err != nil {
			continue
		}
		if addr(v.primary) != primary || v.primary["flags"] != "master" {
			return false
		}
		for _, r := range v.replicas {
			for _, f := range strings.Split(r["flags"], ",") {
				if f == "promoted" || strings.HasPrefix(f, "reconf_") {
					return false
				}
			}
		}
	}
	return true
}

// countReplicas counts, over the Sentinels that answered, the replicas
// any of them sees up (but leftOut, the previous primary, while it still
// reports itself a primary; "" leaves none out) and the replicas any of
// them lists.
func countReplicas(views []sentinelView, leftOut string) (up, known int) {
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
			case name == leftOut && r["role-reported"] == "master":
			default:
				upSet[name] = true
			}
		}
	}
	return len(upSet), len(knownSet)
}

// addr is the host:port a Sentinel gives a node.
func addr(m map[string]string) string { return m["ip"] + ":" + m["port"] }
