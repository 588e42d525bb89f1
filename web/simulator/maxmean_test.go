package simulator

import (
	"fmt"
	"testing"
)

func TestMaxMean(t *testing.T) {
	for _, tc := range []struct {
		counts []int
		want   float64
	}{
		{nil, 0},
		{[]int{0, 0, 0}, 0},
		{[]int{10, 10, 10}, 1},
		{[]int{30, 0, 0}, 3},
		{[]int{30}, 1},
		{[]int{20, 10, 0}, 2},
		{[]int{12, 10, 8}, 1.2},
	} {
		if got := MaxMean(tc.counts); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", tc.want) {
			t.Errorf("MaxMean(%v) = %v, want %v", tc.counts, got, tc.want)
		}
	}
}
