package admin

import (
	"testing"
	"time"
)

// TestMarkJoined: a replica is marked joined when it started within the
// last minute and well after the longest-running one; the replicas of a
// stack that just started together are not, nor one that left.
func TestMarkJoined(t *testing.T) {
	now := time.Now()
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	for _, tc := range []struct {
		name    string
		started []*time.Time
		want    []string
	}{
		{"a stack that just started", []*time.Time{at(-20 * time.Second), at(-18 * time.Second), at(-15 * time.Second)}, []string{"", "", ""}},
		{"a scale-out", []*time.Time{at(-5 * time.Minute), at(-5 * time.Minute), at(-20 * time.Second)}, []string{"", "", ChangeJoined}},
		{"joined long ago", []*time.Time{at(-5 * time.Minute), at(-2 * time.Minute)}, []string{"", ""}},
		{"no start known", []*time.Time{at(-5 * time.Minute), nil}, []string{"", ""}},
	} {
		rs := make([]ReplicaStatus, len(tc.started))
		for i, s := range tc.started {
			rs[i] = ReplicaStatus{Started: s}
		}
		markJoined(rs, now)
		for i := range rs {
			if rs[i].Change != tc.want[i] {
				t.Errorf("%s: replica %d marked %q, want %q", tc.name, i, rs[i].Change, tc.want[i])
			}
		}
	}
	left := []ReplicaStatus{{Started: at(-5 * time.Minute)}, {Change: ChangeLeft, Started: at(-10 * time.Second)}}
	if markJoined(left, now); left[1].Change != ChangeLeft {
		t.Errorf("a replica that left is marked %q, want it to stay left", left[1].Change)
	}
}
