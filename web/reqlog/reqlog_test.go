package reqlog

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

func TestAfterKeepsTheNewestInOrder(t *testing.T) {
	l := New("app1", 3)
	for i := range 5 {
		l.Add(Entry{Path: "/" + strconv.Itoa(i), Mode: "redis"})
	}
	got := l.After(0, 10)
	if len(got) != 3 {
		t.Fatalf("After(0) kept %d entries, want the ring's 3", len(got))
	}
	for i, want := range []string{"/2", "/3", "/4"} {
		if got[i].Path != want || got[i].Replica != "app1" {
			t.Errorf("entry %d = %s on %s, want %s on app1", i, got[i].Path, got[i].Replica, want)
		}
	}
	if got := l.After(4, 10); len(got) != 1 || got[0].Seq != 5 {
		t.Errorf("After(4) = %+v, want only seq 5", got)
	}
	if got := l.After(0, 2); len(got) != 2 || got[1].Seq != 5 {
		t.Errorf("After(0, 2) = %+v, want seq 4 and 5", got)
	}
	if got[0].ID == "" || got[0].ID == got[1].ID {
		t.Errorf("IDs %q and %q: want distinct, non-empty", got[0].ID, got[1].ID)
	}
}

func TestLoadCountsTheLastMinutePerMode(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := New("app2", 10)
	l.now = func() time.Time { return now }
	l.Add(Entry{Mode: "sticky", Time: now.Add(-61 * time.Second)}) // too old, in a slot of its own
	l.Add(Entry{Mode: "sticky", Time: now.Add(-30 * time.Second)})
	l.Add(Entry{Mode: "jwt", Time: now})
	l.Add(Entry{Mode: "jwt", Time: now})
	l.Add(Entry{Mode: "other", Time: now})
	want := make([]int, len(session.Modes))
	want[slices.Index(session.Modes, session.Sticky)] = 1
	want[slices.Index(session.Modes, session.JWT)] = 2
	if got := l.Load(); !slices.Equal(got, want) {
		t.Errorf("Load() = %v, want %v (in session.Modes order)", got, want)
	}
}

func TestMergeIsNewestFirstAndLimited(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := []Entry{{ID: "a1", Time: t0}, {ID: "a2", Time: t0.Add(2 * time.Second)}}
	b := []Entry{{ID: "b1", Time: t0.Add(time.Second)}}
	got := Merge(2, a, b)
	if len(got) != 2 || got[0].ID != "a2" || got[1].ID != "b1" {
		t.Errorf("Merge = %+v, want a2 then b1", got)
	}
}
