// Package history records what clients of a dlock cluster asked and were
// told, with the times they asked and were told, for the checkers in
// internal/check. Times are offsets from the start of the recording on the
// test process's monotonic clock, which every client shares.
package history

import (
	"sort"
	"sync"
	"time"
)

// Kind names an operation.
type Kind string

// The operations a workload records.
const (
	Acquire Kind = "acquire" // take a lock, waiting up to Op.Wait in its queue
	Renew   Kind = "renew"   // extend the caller's hold (Op.Token)
	Release Kind = "release" // end the caller's hold (Op.Token)
	Query   Kind = "query"   // linearizable read of a lock
	Put     Kind = "put"     // KV write
	Get     Kind = "get"     // linearizable KV read
	Delete  Kind = "delete"  // KV delete
)

// Outcome is what the client learned.
type Outcome int

const (
	// OK: the operation took effect (acquire granted, renew or release done,
	// put or delete applied, a read answered).
	OK Outcome = iota
	// Refused: the cluster said, definitely, that the operation did not take
	// effect (acquire: lock held and the wait ended; renew or release: the
	// caller does not hold the lock with that token; query: lock never
	// acquired; get: key absent is OK with Found=false, not Refused).
	Refused
	// Unknown: no answer (timeout, unavailable, connection lost); the
	// operation may or may not have taken effect, at any time after Invoke.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Refused:
		return "refused"
	default:
		return "unknown"
	}
}

// Op is one operation as one client saw it.
type Op struct {
	Client int  // workload client index; a client runs one op at a time
	Kind   Kind // what was asked
	Name   string

	// Asked.
	Owner string        // acquire, renew, release: the lock owner
	Token uint64        // renew, release: the hold's fencing token
	TTL   time.Duration // acquire, renew: the lease asked for
	Wait  time.Duration // acquire: how long to wait in the queue
	Value string        // put: the value written

	// Told.
	Invoke  time.Duration // when the client sent it (first attempt)
	Return  time.Duration // when the client had its answer or gave up
	Outcome Outcome
	Reason  string // Refused or Unknown: the error, for reports

	// Results of OK operations.
	ResToken  uint64 // acquire, renew: the hold's token; query: the current or last hold's token
	ResNonce  uint64 // acquire, query: the lock's grant count
	ResHolder string // query: the holder ("" when free)
	ResValue  string // get: the value
	ResFound  bool   // get: the key exists; query: the lock record exists

	// Queued (acquire, optional) is a time on the recording's clock by which
	// the cluster had this acquire's owner in the lock's queue, waiting for
	// the hold this op was granted; 0 when the workload does not know. The
	// FIFO check (check.FIFO) uses only acquires that set it. WARNING: a
	// Queued that is too early makes that check report false violations.
	Queued time.Duration
}

// Recorder collects Ops from concurrent clients.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder starts a recording now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the current offset on the recording's clock.
func (r *Recorder) Now() time.Duration { return time.Since(r.start) }

// Start is when the recording began.
func (r *Recorder) Start() time.Time { return r.start }

// Add records a finished op.
func (r *Recorder) Add(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns the recorded ops sorted by Invoke.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	ops := append([]Op(nil), r.ops...)
	r.mu.Unlock()
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Invoke < ops[j].Invoke })
	return ops
}
