package session

import (
	"fmt"
	"testing"
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
