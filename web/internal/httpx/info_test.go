package httpx

import (
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
