package session

import (
	"fmt"
	"testing"
	"time"
)

func TestRememberKeepsTheNewest(t *testing.T) {
	var d Data
	at := time.Unix(1_000_000, 0)
	for i := 0; i < MaxApplied+5; i++ {
		d.Remember(fmt.Sprintf("%04x", i), "aa", at)
	}
	if len(d.Applied) != MaxApplied {
		t.Fatalf("%d remembered, want %d", len(d.Applied), MaxApplied)
	}
	if seen, _ := d.Recall("0000", "aa"); seen {
		t.Error("the oldest key is still remembered")
	}
	if seen, same := d.Recall(fmt.Sprintf("%04x", MaxApplied+4), "aa"); !seen || !same {
		t.Error("the newest key is forgotten")
	}
	if _, same := d.Recall(fmt.Sprintf("%04x", MaxApplied+4), "bb"); same {
		t.Error("a different request under the same key counts as the same")
	}
	if !ValidApplied(d.Applied) || ValidApplied([]string{"zz:aa"}) || ValidApplied([]string{"aa:bb:cc"}) || ValidApplied(make([]string, MaxApplied+1)) {
		t.Error("ValidApplied")
	}
}

// The soak's finding (issue 31): a session that remembered its last 10
// keys applied a stale copy of the 11th-newest a second time. Keys are
// kept for a time now, however many came after.
func TestForgetAppliedByAge(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	var d Data
	d.Remember("0001", "aa", start)
	for i := range 500 {
		d.Remember(fmt.Sprintf("1%03x", i), "bb", start.Add(time.Duration(i)*time.Second))
	}
	// An entry of a list written before entries had a time.
	d.Applied = append([]string{"00ff:cc"}, d.Applied...)
	if seen, same := d.Recall("00ff", "cc"); !seen || !same {
		t.Error("an entry without a time is not recalled")
	}
	d.ForgetApplied(time.Time{}, MaxApplied)
	if seen, _ := d.Recall("0001", "aa"); !seen || len(d.Applied) != 502 {
		t.Errorf("ForgetApplied with no age limit forgot something: %d kept", len(d.Applied))
	}
	d.ForgetApplied(start.Add(100*time.Second), MaxApplied)
	if seen, _ := d.Recall("0001", "aa"); seen {
		t.Error("a key applied before since is remembered")
	}
	if seen, _ := d.Recall("00ff", "cc"); seen {
		t.Error("an entry without a time outlived since")
	}
	if seen, _ := d.Recall("1064", "bb"); !seen || len(d.Applied) != 400 {
		t.Errorf("the key applied at since, and the 399 after it, must be kept: %d kept", len(d.Applied))
	}
	d.ForgetApplied(time.Time{}, 10)
	if len(d.Applied) != 10 || d.Applied[9] != "11f3:bb:"+fmt.Sprint(start.Unix()+499) {
		t.Errorf("limit 10 kept %v", d.Applied)
	}
}

func TestKeepApplied(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		to   Timeouts
		want time.Duration
	}{
		{Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}, 30 * time.Minute},
		{Timeouts{Idle: 2 * time.Second}, MinKeepApplied},
		{Timeouts{Absolute: 2 * time.Hour}, 2 * time.Hour},
		{Timeouts{}, 0},
	} {
		if got := tc.to.KeepApplied(); got != tc.want {
			t.Errorf("%+v.KeepApplied() = %v, want %v", tc.to, got, tc.want)
		}
	}
	if got := (Timeouts{Idle: 30 * time.Minute}).AppliedSince(now); !got.Equal(now.Add(-30 * time.Minute)) {
		t.Errorf("AppliedSince = %v", got)
	}
	if !(Timeouts{}).AppliedSince(now).IsZero() {
		t.Error("without timeouts every applied request is kept")
	}
}

func TestTimeoutsEnds(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	to := Timeouts{Idle: 30 * time.Minute, Absolute: 2 * time.Hour}
	if got := to.Ends(start, start.Add(time.Hour)); !got.Equal(start.Add(90 * time.Minute)) {
		t.Errorf("idle end %v", got)
	}
	if got := to.Ends(start, start.Add(100*time.Minute)); !got.Equal(start.Add(2 * time.Hour)) {
		t.Errorf("absolute cap %v", got)
	}
	if !to.Ended(start, start.Add(time.Hour), start.Add(91*time.Minute)) || to.Ended(start, start.Add(time.Hour), start.Add(89*time.Minute)) {
		t.Error("Ended")
	}
	if !(Timeouts{}).Ends(start, start).IsZero() {
		t.Error("no limits should never end")
	}
}

func TestParseAndChoices(t *testing.T) {
	for _, m := range Modes {
		if got, ok := ParseMode(string(m)); !ok || got != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, ok)
		}
	}
	for _, a := range Affinities {
		if got, ok := ParseAffinity(string(a)); !ok || got != a {
			t.Errorf("ParseAffinity(%q) = %q, %v", a, got, ok)
		}
	}
	if _, ok := ParseMode("Sticky"); ok {
		t.Error("modes are case-sensitive")
	}
	if _, ok := ParseAffinity(""); ok {
		t.Error("the empty affinity parsed")
	}
	if got := Choices(Modes); got != "sticky, redis, jwt or memcached" {
		t.Errorf("Choices(Modes) = %q", got)
	}
	if got := Choices([]Mode{Sticky}); got != "sticky" {
		t.Errorf("Choices of one = %q", got)
	}
	for name, want := range map[string]bool{"app2": true, "sessiondemo-app-3": true, "App2": false, "-app": false, "": false, "a.b": false} {
		if ValidReplicaName(name) != want {
			t.Errorf("ValidReplicaName(%q) = %v, want %v", name, !want, want)
		}
	}
}
