package zookeeper

import (
	"testing"
	"time"
)

func TestSessionTimeout(t *testing.T) {
	tests := []struct {
		give, want time.Duration
	}{
		{give: time.Second, want: SessionTimeoutMin},
		{give: 10 * time.Second, want: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.give.String(), func(t *testing.T) {
			if got := SessionTimeout(tt.give); got != tt.want {
				t.Errorf("SessionTimeout(%s) = %s, want %s", tt.give, got, tt.want)
			}
		})
	}
}

// loadgen's names contain slashes; each must become one node under the root, or the recipe would
// need (and race to create) parents of its own.
func TestPathsAreOneNode(t *testing.T) {
	tests := []struct {
		name, give, want string
	}{
		{"lock", lockPath("bench/1a2b/c3"), "/dlock-bench/locks/bench%2F1a2b%2Fc3"},
		{"key", keyPath("bench/1a2b/key3"), "/dlock-bench/kv/bench%2F1a2b%2Fkey3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give != tt.want {
				t.Errorf("got %s, want %s", tt.give, tt.want)
			}
		})
	}
}
