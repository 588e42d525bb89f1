package session

import "time"

// Timeouts end sessions on the server (OWASP ASVS 3.3): Idle after the
// last request, Absolute after the session began, whatever happens. A zero
// duration is no limit.
type Timeouts struct {
	Idle     time.Duration
	Absolute time.Duration
}

// Ends returns when a session that began at started and was last active at
// active ends. The zero time means never.
func (t Timeouts) Ends(started, active time.Time) time.Time {
	var end time.Time
	if t.Idle > 0 {
		end = active.Add(t.Idle)
	}
	if t.Absolute > 0 {
		if abs := started.Add(t.Absolute); end.IsZero() || abs.Before(end) {
			end = abs
		}
	}
	return end
}

// Ended reports whether such a session has ended at now.
func (t Timeouts) Ended(started, active, now time.Time) bool {
	end := t.Ends(started, active)
	return !end.IsZero() && !now.Before(end)
}

// TTL is how long a session that began at started may still live, idle,
// from now, as the expiry of the entry that holds it in a store that
// expires entries itself (Redis, Memcached): the idle timeout, or less
// near the absolute end, and at least a second, since neither takes a
// shorter one (a session already ended never gets here: the store checks
// Ended first). Such a store requires an idle timeout of at least a
// second.
func (t Timeouts) TTL(started, now time.Time) time.Duration {
	return max(min(t.Ends(started, now).Sub(now), t.Idle), time.Second)
}

// MinKeepApplied is the shortest time a session remembers an applied
// idempotency key, however short its timeouts: longer than nginx keeps
// resending a request (X-Request-Budget, compose/nginx.conf) and than a
// client that retries for half a minute.
const MinKeepApplied = time.Minute

// KeepApplied is how long a session remembers the idempotency keys it
// applied (Data.Applied): its idle timeout, or without one its absolute
// timeout, and at least MinKeepApplied. Zero, without either timeout:
// kept until MaxApplied newer ones push them out.
func (t Timeouts) KeepApplied() time.Duration {
	switch {
	case t.Idle > 0:
		return max(t.Idle, MinKeepApplied)
	case t.Absolute > 0:
		return max(t.Absolute, MinKeepApplied)
	}
	return 0
}

// AppliedSince is the oldest time of an applied request a session still
// remembers at now (KeepApplied); the zero time keeps every one.
func (t Timeouts) AppliedSince(now time.Time) time.Time {
	if keep := t.KeepApplied(); keep > 0 {
		return now.Add(-keep)
	}
	return time.Time{}
}
