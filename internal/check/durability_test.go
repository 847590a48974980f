package check

import (
	"testing"

	"github.com/dlock-raft/dlock/internal/history"
)

func TestDurability(t *testing.T) {
	ops := func(o ...history.Op) []history.Op { return o }
	tests := []struct {
		name       string
		give       []history.Op
		final      []history.Op
		longLeases bool
		want       string
	}{
		// "Acknowledged means fsync'd on a majority. kill -9 of any node,
		// or of all nodes at once, loses nothing that was acknowledged."
		{"acknowledged put survives", ops(put(0, "k", "a", 0, 1, ok)), ops(get(0, "k", 0, 0, "a")), false, "ok"},
		{"acknowledged put lost", ops(put(0, "k", "a", 0, 1, ok)), ops(absent(0, "k", 0, 0)), false, "fail"},
		{"older value came back", ops(put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, ok)),
			ops(get(0, "k", 0, 0, "a")), false, "fail"},
		{"acknowledged delete undone", ops(put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, ok)),
			ops(get(0, "k", 0, 0, "a")), false, "fail"},
		{"unanswered put kept", ops(put(0, "k", "a", 0, 1, unknown)), ops(get(0, "k", 0, 0, "a")), false, "ok"},
		{"unanswered put lost", ops(put(0, "k", "a", 0, 1, unknown)), ops(absent(0, "k", 0, 0)), false, "ok"},
		{"value nobody wrote", ops(put(0, "k", "a", 0, 1, ok)), ops(get(0, "k", 0, 0, "z")), false, "fail"},
		// Leases may have expired: only what expiry cannot undo.
		{"lock expired since", ops(acquired(0, "L", "a", 0, 1, 3, 1)), ops(query(0, "L", 0, 0, "", 3, 1)), false, "ok"},
		{"lock granted again since", ops(acquired(0, "L", "a", 0, 1, 3, 1), acquire(1, "L", "b", 2, 3, unknown, long)),
			ops(query(0, "L", 0, 0, "b", 7, 2)), false, "ok"},
		{"lock record lost", ops(acquired(0, "L", "a", 0, 1, 3, 1)), ops(noRecord(0, "L", 0, 0)), false, "fail"},
		{"token went back", ops(acquired(0, "L", "a", 0, 1, 3, 1)), ops(query(0, "L", 0, 0, "", 2, 1)), false, "fail"},
		{"nonce went back", ops(acquired(0, "L", "a", 0, 1, 3, 2)), ops(query(0, "L", 0, 0, "", 3, 1)), false, "fail"},
		{"token given to another owner", ops(acquired(0, "L", "a", 0, 1, 3, 1)), ops(query(0, "L", 0, 0, "b", 3, 1)), false, "fail"},
		// "Idempotency. ... a retry ... is applied once."
		{"more grants than acquires", ops(acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok)),
			ops(query(0, "L", 0, 0, "", 4, 2)), false, "fail"},
		{"never acquired", ops(noRecord(0, "L", 0, 1)), ops(noRecord(0, "L", 0, 0)), false, "ok"},
		// With leases that outlast the run, the final state is exact.
		{"held lock still held", ops(acquired(0, "L", "a", 0, 1, 3, 1)), ops(query(0, "L", 0, 0, "a", 3, 1)), true, "ok"},
		{"held lock lost its holder", ops(acquired(0, "L", "a", 0, 1, 3, 1)), ops(query(0, "L", 0, 0, "", 3, 1)), true, "fail"},
		{"released lock free", ops(acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok)),
			ops(query(0, "L", 0, 0, "", 3, 1)), true, "ok"},
		{"released lock held again", ops(acquired(0, "L", "a", 0, 1, 3, 1), release(0, "L", "a", 3, 2, 3, ok)),
			ops(query(0, "L", 0, 0, "a", 3, 1)), true, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, Durability(tt.give, tt.final, tt.longLeases, fast), tt.want)
		})
	}
}
