package loadgen

import (
	"fmt"
	"io"
	"time"
)

// A Workload names what each simulated client does in a loop.
type Workload string

const (
	// Uncontended: each client acquires and releases a lock of its own. Its rate is cycles/s.
	Uncontended Workload = "uncontended"
	// Contended: every client acquires and releases one shared lock, so each grant is a handoff from
	// the previous holder through the lock's FIFO queue. Its rate is handoffs/s.
	Contended Workload = "contended"
	// Mixed: each client cycles a lock of its own, then writes and reads a key of its own.
	Mixed Workload = "mixed"
	// Query: each client reads the holder of a lock (held by nobody) with linearizable reads.
	Query Workload = "query"
	// Fill: each client acquires new locks of its own and never releases them, to fill a cluster with
	// held locks (memory and snapshot sizing). Its rate is acquires/s. The locks stay held after the
	// run until their TTL runs out, so give it a TTL long enough for the measurement that follows.
	Fill Workload = "fill"
)

// Workloads lists every workload, in the order reports show them.
var Workloads = []Workload{Uncontended, Contended, Mixed, Query, Fill}

// Limits on a Config, so a typo cannot start a million goroutines or allocate gigabytes of values.
// Every latency is kept (see the package doc), so a run's length is capped too: about 40 bytes a
// cycle, an hour at 10,000 cycles/s is 1.4 GB.
const (
	ClientsMax     = 100_000
	PayloadSizeMax = 1 << 20
	DurationMax    = time.Hour
	OpsMax         = 50_000_000
)

// Config says what Run does. Run stops at Duration or after Ops operations, whichever comes first;
// at least one of them must be set.
type Config struct {
	Workload Workload
	// Clients is the number of concurrent simulated clients, each with its own Session.
	Clients int
	// Duration bounds the run's length; 0: unbounded (Ops must be set).
	Duration time.Duration
	// Ops bounds the number of headline operations (cycles, handoffs or reads); 0: unbounded.
	Ops int
	// TTL is each hold's lease. Leases must outlive Hold plus the slowest acquire, or holds expire.
	TTL time.Duration
	// Hold is how long a client keeps a lock before releasing it; 0 releases at once.
	Hold time.Duration
	// PayloadSize is the size in bytes of each value the mixed workload writes.
	PayloadSize int
	// Progress, if set, receives a live progress line every second (rewritten in place with \r).
	Progress io.Writer
	// OnStart, if set, is called once the sessions are open, as the measured run starts: a fault
	// injected from it lands at a known time into the run.
	OnStart func()
}

// Validate reports the first field that is out of range, naming it, its value and the bound.
func (c Config) Validate() error {
	switch {
	case !known(c.Workload):
		return fmt.Errorf("loadgen: workload %q: want one of %v", c.Workload, Workloads)
	case c.Clients < 1 || c.Clients > ClientsMax:
		return fmt.Errorf("loadgen: clients %d: want 1 to %d", c.Clients, ClientsMax)
	case c.Duration < 0 || c.Duration > DurationMax || c.Ops < 0 || c.Ops > OpsMax:
		return fmt.Errorf("loadgen: duration %s, ops %d: want 0 to %s and 0 to %d", c.Duration, c.Ops, DurationMax, OpsMax)
	case c.Duration == 0 && c.Ops == 0:
		return fmt.Errorf("loadgen: duration and ops are both 0: set at least one")
	case c.TTL < time.Second:
		return fmt.Errorf("loadgen: ttl %s: want at least 1s", c.TTL)
	case c.Hold < 0 || c.Hold >= c.TTL:
		return fmt.Errorf("loadgen: hold %s: want 0 or more and below the ttl %s", c.Hold, c.TTL)
	case c.PayloadSize < 0 || c.PayloadSize > PayloadSizeMax:
		return fmt.Errorf("loadgen: payload size %d: want 0 to %d", c.PayloadSize, PayloadSizeMax)
	}
	return nil
}

func known(w Workload) bool {
	for _, k := range Workloads {
		if w == k {
			return true
		}
	}
	return false
}
