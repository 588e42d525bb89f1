package httpx

import (
	"regexp"
	"strings"
	"testing"
)

func TestValidRequestID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"0123456789abcdef0123456789abcdef", true}, // nginx's $request_id
		{"abcdEFGH", true},                         // 8, the shortest
		{strings.Repeat("a-", 32), true},           // 64, the longest
		{"abcdEFG", false},                         // 7
		{strings.Repeat("a", 65), false},
		{"", false},
		{"abcd_efgh", false},
		{"abcd efgh", false},
		{"abcdefgh\n", false},
		{"abcdefgh\r\nX-Evil: 1", false},
		{"abcdéfgh", false},
		{"abcd.efgh", false},
	} {
		if got := validRequestID(tc.id); got != tc.want {
			t.Errorf("validRequestID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

// FuzzValidRequestID holds validRequestID to the regular expression it
// replaced.
func FuzzValidRequestID(f *testing.F) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`)
	for _, seed := range []string{"0123456789abcdef0123456789abcdef", "abcdEFG", "abcdefgh\n", "abcdéfgh", strings.Repeat("Z", 64), strings.Repeat("9", 65)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validRequestID(id), pattern.MatchString(id); got != want {
			t.Errorf("validRequestID(%q) = %v, the regexp says %v", id, got, want)
		}
	})
}
