package e2e

// The soak's faults (TestSoak): a seeded schedule of outside faults on
// the replicas and the Redis primary, injected and healed from the
// test's goroutine, and their log.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// soakFault is one fault of the schedule.
type soakFault struct {
	kind, target      string
	began, healed     time.Time
	heal              func()
	healAt            time.Time
	replica, redisRun bool
}

// faultSchedule injects the soak's faults from the test's goroutine
// (the Docker helpers stop the test on an error).
type faultSchedule struct {
	t        *testing.T
	rnd      *rand.Rand
	start    time.Time
	replicas []string
	faults   []*soakFault
	active   []*soakFault
}

func newFaultSchedule(t *testing.T, rnd *rand.Rand, start time.Time) *faultSchedule {
	return &faultSchedule{t: t, rnd: rnd, start: start, replicas: replicas(t)}
}

// between is a random duration from lo to hi.
func (f *faultSchedule) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(f.rnd.Int64N(int64(hi-lo)))
}

// run starts a fault every 3 to 7 s and heals each 2 to 9 s after it
// began, until length has passed.
func (f *faultSchedule) run(length time.Duration) {
	end := f.start.Add(length)
	next := time.Now().Add(f.between(3*time.Second, 7*time.Second))
	for time.Now().Before(end) {
		f.healDue()
		if !time.Now().Before(next) {
			f.inject()
			next = time.Now().Add(f.between(3*time.Second, 7*time.Second))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inject starts one fault: on a replica (at most two of three faulted at
// once) or on the Redis primary (one Redis node at a time), drawn from
// those possible now.
func (f *faultSchedule) inject() {
	t := f.t
	var replicaFaults, redisFaulted int
	busy := map[string]bool{}
	for _, a := range f.active {
		busy[a.target] = true
		if a.replica {
			replicaFaults++
		} else {
			redisFaulted++
		}
	}
	var kinds []string
	if replicaFaults < 2 {
		kinds = append(kinds, "replica kill", "replica stop", "replica pause", "replica disconnect")
	}
	if redisFaulted == 0 {
		kinds = append(kinds, "redis kill", "redis restart", "redis pause")
	}
	kind := kinds[f.rnd.IntN(len(kinds))]
	fault := &soakFault{kind: kind, replica: strings.HasPrefix(kind, "replica")}
	if fault.replica {
		var free []string
		for _, r := range f.replicas {
			if !busy[r] {
				free = append(free, r)
			}
		}
		fault.target = free[f.rnd.IntN(len(free))]
	} else {
		primary, err := redisPrimary()
		if err != nil {
			t.Logf("soak: no %s now (%v): skipped", kind, err)
			return
		}
		fault.target = primary
	}
	fault.began = time.Now()
	fault.healAt = fault.began.Add(f.between(2*time.Second, 9*time.Second))
	v := fault.target
	switch kind {
	case "replica kill", "redis kill":
		killContainer(t, v)
		fault.heal = func() { startContainer(t, v) }
	case "replica stop":
		stopContainer(t, v, 15*time.Second)
		fault.heal = func() { startContainer(t, v) }
	case "replica pause", "redis pause":
		pauseContainer(t, v)
		fault.heal = func() { unpauseContainer(t, v) }
	case "replica disconnect":
		fault.heal = disconnectContainer(t, v)
	case "redis restart":
		// docker restart: a graceful stop and a start, one command; the
		// node is back (as a replica, after REDIS_RESTART_DELAY) by itself.
		restartContainer(t, v, 10*time.Second)
		fault.heal = func() {}
	}
	f.faults = append(f.faults, fault)
	f.active = append(f.active, fault)
}

// healDue heals the faults whose time has come.
func (f *faultSchedule) healDue() {
	now := time.Now()
	f.active = slices.DeleteFunc(f.active, func(a *soakFault) bool {
		if now.Before(a.healAt) {
			return false
		}
		a.heal()
		a.healed = time.Now()
		return true
	})
}

// healAll heals every fault still active.
func (f *faultSchedule) healAll() {
	for _, a := range f.active {
		a.heal()
		a.healed = time.Now()
	}
	f.active = nil
}

// log is the faults with their times from the soak's start.
func (f *faultSchedule) log() string {
	var b strings.Builder
	for _, a := range f.faults {
		fmt.Fprintf(&b, "  %6.1f-%6.1f  %s %s\n", a.began.Sub(f.start).Seconds(), a.healed.Sub(f.start).Seconds(), a.kind, a.target)
	}
	return b.String()
}

// around names the faults active within 10 s before at, with their times.
func (f *faultSchedule) around(at time.Time) string {
	var near []string
	for _, a := range f.faults {
		if a.began.Before(at) && a.healed.After(at.Add(-10*time.Second)) {
			near = append(near, fmt.Sprintf("%s %s %.1f-%.1f s", a.kind, a.target, a.began.Sub(f.start).Seconds(), a.healed.Sub(f.start).Seconds()))
		}
	}
	sort.Strings(near)
	if len(near) == 0 {
		return "none within 10 s"
	}
	return fmt.Sprintf("at %.1f s: %s", at.Sub(f.start).Seconds(), strings.Join(near, "; "))
}

// redisPrimary is the Redis primary the admin status names, without
// stopping the test: the status may be briefly unanswered mid-fault.
func redisPrimary() (string, error) {
	var st adminStatus
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(stack.lbURL + "/api/admin/status")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status answered %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", err
	}
	if st.RedisPrimary == "" {
		return "", errors.New("the status names no primary")
	}
	return st.RedisPrimary, nil
}
