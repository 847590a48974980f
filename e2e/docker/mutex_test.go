package docker

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The mutual-exclusion check finds what it is meant to find, and nothing in a clean history.
func TestMutexProblems(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Worker 1 holds token 5 over 0..100ms, worker 2 token 6 from 150ms.
	clean := []hold{
		{worker: 1, token: 5, sent: at(0), returned: at(10), end: at(100)},
		{worker: 2, token: 6, sent: at(20), returned: at(150), end: at(200)},
		{worker: 1, token: 7, sent: at(110), returned: at(210), end: at(250)},
	}
	tests := []struct {
		name  string
		give  []hold
		above uint64
		want  []string
	}{
		{"a clean history", clean, 4, nil},
		{"a grant while the previous holder could still use the lock", []hold{clean[0],
			{worker: 2, token: 6, sent: at(20), returned: at(90), end: at(200)}}, 4, []string{"mutual exclusion broken"}},
		{"a token granted twice", []hold{clean[0], {worker: 2, token: 5, sent: at(120), returned: at(150), end: at(200)}}, 4,
			[]string{"token 5 granted twice"}},
		{"a worker's tokens going backwards", []hold{clean[2], {worker: 1, token: 6, sent: at(300), returned: at(310), end: at(320)}}, 4,
			// Granted token 7 before token 6 means 7's grant came later, while 6 was still held.
			[]string{"worker 1 was granted token 6 after token 7", "mutual exclusion broken"}},
		{"a token not above those granted before", clean, 5, []string{"worker 1 was granted token 5, not above 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mutexProblems(tt.give, tt.above)
			ok := len(got) == len(tt.want)
			for i := range tt.want {
				ok = ok && strings.Contains(got[i], tt.want[i])
			}
			if !ok {
				t.Errorf("mutexProblems = %q, want problems containing %q", got, tt.want)
			}
		})
	}
	if !slices.IsSortedFunc(clean, byToken) {
		t.Fatal("rows must list holds in token order")
	}
}
