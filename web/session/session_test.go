package session

import (
	"fmt"
	"testing"
	"time"
)

func TestRememberKeepsTheNewest(t *testing.T) {
	var d Data
	for i := 0; i < MaxApplied+5; i++ {
		d.Remember(fmt.Sprintf("%04x", i), "aa")
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
	if !ValidApplied(d.Applied) || ValidApplied([]string{"zz:aa"}) || ValidApplied(make([]string, MaxApplied+1)) {
		t.Error("ValidApplied")
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
