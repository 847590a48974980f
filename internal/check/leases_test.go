package check

import (
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/history"
)

func TestLeases(t *testing.T) {
	short := 100 * time.Millisecond
	// a holds L with token 3 and a 100ms lease from 0.
	held := ttl(acquired(0, "L", "a", 0, 1, 3, 1), short)
	tests := []struct {
		name string
		give []history.Op
		want string
	}{
		// "A lease is a lower bound, never cut short by a failover or a
		// clock jump."
		{"another owner granted after the lease", []history.Op{held, acquired(1, "L", "b", 90, 101, 4, 2)}, "ok"},
		{"another owner granted before the lease ran", []history.Op{held, acquired(1, "L", "b", 10, 20, 4, 2)}, "fail"},
		{"another owner renewing a later hold before the lease ran", []history.Op{
			held, renew(1, "L", "b", 4, 10, 20, ok),
		}, "fail"},
		{"owner released first", []history.Op{
			held, release(0, "L", "a", 3, 5, 6, ok), acquired(1, "L", "b", 10, 20, 4, 2),
		}, "ok"},
		{"owner's unanswered release may have come first", []history.Op{
			held, release(0, "L", "a", 0, 5, 6, unknown), acquired(1, "L", "b", 10, 20, 4, 2),
		}, "ok"},
		{"owner's refused release does not count", []history.Op{
			held, release(0, "L", "a", 4, 5, 6, refused), acquired(1, "L", "b", 10, 20, 4, 2),
		}, "fail"},
		{"query shows the lock free before the lease ran", []history.Op{held, query(1, "L", 10, 20, "", 3, 1)}, "fail"},
		{"query shows another holder before the lease ran", []history.Op{held, query(1, "L", 10, 20, "b", 4, 2)}, "fail"},
		{"query shows a later token before the lease ran", []history.Op{
			held, query(1, "L", 0, 20, "", 4, 2),
		}, "fail"},
		{"query shows no record before the lease ran", []history.Op{
			held, base(1, history.Query, "L", 10, 20, refused),
		}, "fail"},
		{"query concurrent with the grant shows the lock free", []history.Op{held, query(1, "L", 0, 2, "", 0, 0)}, "ok"},
		{"query shows the hold", []history.Op{held, query(1, "L", 10, 20, "a", 3, 1)}, "ok"},
		{"query shows the lock free after the lease", []history.Op{held, query(1, "L", 10, 120, "", 3, 1)}, "ok"},
		{"owner's renew refused before the lease ran", []history.Op{
			held, ttl(renew(0, "L", "a", 3, 50, 51, refused), short),
		}, "fail"},
		{"owner's renew of any token refused before the lease ran", []history.Op{
			held, ttl(renew(0, "L", "a", 0, 50, 51, refused), short),
		}, "fail"},
		{"owner's renew of another token refused", []history.Op{
			held, ttl(renew(0, "L", "a", 9, 50, 51, refused), short),
		}, "ok"},
		{"owner's renew refused after the lease ran", []history.Op{
			held, ttl(renew(0, "L", "a", 3, 101, 102, refused), short),
		}, "ok"},
		// "The holder may renew it (keepalive)."
		{"renewed lease cut short", []history.Op{
			held, ttl(renew(0, "L", "a", 3, 80, 81, ok), short), acquired(1, "L", "b", 90, 150, 4, 2),
		}, "fail"},
		{"renewed lease ran out", []history.Op{
			held, ttl(renew(0, "L", "a", 3, 80, 81, ok), short), acquired(1, "L", "b", 90, 185, 4, 2),
		}, "ok"},
		{"renew sent after the evidence does not count", []history.Op{
			held, acquired(1, "L", "b", 90, 105, 4, 2), ttl(renew(0, "L", "a", 3, 110, 111, unknown), short),
		}, "ok"},
		{"unanswered renew with a shorter TTL may have cut it", []history.Op{
			held, ttl(renew(0, "L", "a", 3, 5, 6, unknown), 10*time.Millisecond), acquired(1, "L", "b", 10, 20, 4, 2),
		}, "ok"},
		// An acquire that gave up is withdrawn by the server; a later
		// acquire by the same owner that was told it holds the lock must
		// keep it all the same.
		{"hold acknowledged by a reentrant acquire, then withdrawn", []history.Op{
			acquire(0, "L", "a", 0, 10, unknown, long), ttl(acquired(0, "L", "a", 20, 21, 5, 1), short),
			acquired(1, "L", "b", 30, 40, 6, 2),
		}, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, Leases(tt.give), tt.want)
		})
	}
}
