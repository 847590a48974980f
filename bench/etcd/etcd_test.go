package etcd

import (
	"testing"
	"time"
)

// etcd grants leases in whole seconds: the TTL is rounded up, never down, so no hold is shorter than
// the benchmark asked for.
func TestLeaseTTL(t *testing.T) {
	tests := []struct {
		give time.Duration
		want int
	}{
		{give: 0, want: 1},
		{give: 500 * time.Millisecond, want: 1},
		{give: time.Second, want: 1},
		{give: 1500 * time.Millisecond, want: 2},
		{give: 10 * time.Second, want: 10},
	}
	for _, tt := range tests {
		t.Run(tt.give.String(), func(t *testing.T) {
			if got := LeaseTTL(tt.give); got != tt.want {
				t.Errorf("LeaseTTL(%s) = %d, want %d", tt.give, got, tt.want)
			}
		})
	}
}
