package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// EventSink receives the events of every applied entry, on every node, in log
// order, after the state lock is released. A nil slice means the state was
// replaced by a snapshot: anything may have changed. It must not block.
type EventSink func(events []fsm.Event)

// replica adapts the pure state machine to raft.BatchingFSM: it decodes log
// entries, guards the state with a readers' lock, tracks the applied index
// and lets readers wait for an index.
type replica struct {
	limits fsm.Limits
	sink   EventSink
	clock  func() time.Time
	// log and observer are set once, before Raft starts.
	log      *slog.Logger
	observer Observer

	mu        sync.RWMutex
	state     *fsm.State
	applied   uint64
	appliedAt time.Time // local monotonic time of the last apply, for lease display

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced on every apply

	// lastSnapshot is the size of the last snapshot captured, to size the next one's buffer: grown by
	// doubling, a 80 MB snapshot (a million held locks) would leave 216 MB of buffers behind.
	lastSnapshot atomic.Int64
}

func newReplica(l fsm.Limits, sink EventSink, clock func() time.Time) *replica {
	return &replica{limits: l, sink: sink, clock: clock, state: fsm.New(l), waitCh: make(chan struct{}), appliedAt: clock(),
		log: slog.Default(), observer: nopObserver{}}
}

var _ raft.BatchingFSM = (*replica)(nil)

// Apply applies one log entry; its response is the fsm.Output.
func (r *replica) Apply(l *raft.Log) interface{} {
	return r.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries under one lock acquisition.
func (r *replica) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	var events []fsm.Event
	renewals := 0
	r.mu.Lock()
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			o, renewed := r.applyEntry(l.Data)
			out[i] = o
			events = append(events, o.Events...)
			renewals += renewed
		}
		r.applied = l.Index
	}
	r.appliedAt = r.clock()
	r.mu.Unlock()
	if len(events) > 0 && r.sink != nil {
		r.sink(events)
	}
	r.notify()
	if len(events) > 0 || renewals > 0 {
		r.observeEvents(events, renewals)
	}
	return out
}

// applyEntry applies one entry's bytes, as fsm.State.ApplyBytes does, and
// also counts the renewals it applied (renewals emit no event). Called with
// r.mu held.
func (r *replica) applyEntry(data []byte) (fsm.Output, int) {
	var e fsmpb.Entry
	if err := proto.Unmarshal(data, &e); err != nil {
		return r.state.ApplyBytes(data), 0 // the same refusal, on every replica
	}
	o := r.state.Apply(&e)
	renewed := 0
	for i, c := range e.Commands {
		if c.GetRenew() != nil && i < len(o.Results) && o.Results[i].Code == fsmpb.Code_OK && !o.Results[i].Replayed {
			renewed++
		}
	}
	return o, renewed
}

// observeEvents counts applied events for metrics and logs each lease
// expiry at debug level. It never logs a KV value: events carry none.
func (r *replica) observeEvents(events []fsm.Event, renewals int) {
	var grants, releases, expiries int
	debug := r.log.Enabled(context.Background(), slog.LevelDebug)
	for _, e := range events {
		switch e.Kind {
		case fsm.EventGranted:
			grants++
		case fsm.EventReleased:
			releases++
		case fsm.EventExpired:
			expiries++
			if debug {
				r.log.Debug("lease expired", "lock", e.Name, "owner", e.Owner, "token", e.Token, "ttl", time.Duration(e.TTL))
			}
		}
	}
	r.observer.Applied(grants, releases, expiries, renewals)
}

func (r *replica) notify() {
	r.waitMu.Lock()
	close(r.waitCh)
	r.waitCh = make(chan struct{})
	r.waitMu.Unlock()
}

// appliedIndex returns the last applied log index.
func (r *replica) appliedIndex() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.applied
}

// waitApplied blocks until index is applied or done is closed.
func (r *replica) waitApplied(index uint64, done <-chan struct{}) bool {
	for {
		r.waitMu.Lock()
		ch := r.waitCh
		r.waitMu.Unlock()
		if r.appliedIndex() >= index {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// view runs fn with the state under the readers' lock. fn must not keep the
// state nor block.
func (r *replica) view(fn func(s *fsm.State)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn(r.state)
}

// clusterNow estimates cluster time on this node: the time of the last
// applied entry plus the local time since it was applied.
func (r *replica) clusterNow() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.state.Now() + int64(r.clock().Sub(r.appliedAt))
}

// Snapshot encodes the state now; hashicorp/raft never calls it concurrently
// with Apply, and Persist then writes the bytes while applies go on.
func (r *replica) Snapshot() (raft.FSMSnapshot, error) {
	start := time.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	var buf bytes.Buffer
	if n := r.lastSnapshot.Load(); n > 0 {
		buf.Grow(int(n + n/8)) // room for some growth since
	}
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], r.applied)
	buf.Write(idx[:])
	if err := r.state.WriteSnapshot(&buf); err != nil {
		return nil, fmt.Errorf("encode snapshot at index %d: %w", r.applied, err)
	}
	r.lastSnapshot.Store(int64(buf.Len()))
	r.observer.Snapshot("capture", time.Since(start), buf.Len())
	return &encodedSnapshot{data: buf.Bytes(), index: r.applied, log: r.log, observer: r.observer}, nil
}

// Restore replaces the whole state with a snapshot's.
func (r *replica) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	start := time.Now()
	br := bufio.NewReaderSize(rc, 1<<16)
	var idx [8]byte
	if _, err := io.ReadFull(br, idx[:]); err != nil {
		return fmt.Errorf("read snapshot index: %w", err)
	}
	st, err := fsm.Restore(br, r.limits)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	r.mu.Lock()
	r.state = st
	r.applied = binary.BigEndian.Uint64(idx[:])
	r.appliedAt = r.clock()
	r.mu.Unlock()
	took := time.Since(start)
	r.observer.Snapshot("restore", took, 0)
	r.log.Info("snapshot restored", "index", binary.BigEndian.Uint64(idx[:]), "duration", took)
	if r.sink != nil {
		// Waiters re-check the state: a grant may be inside the snapshot.
		r.sink(nil)
	}
	r.notify()
	return nil
}

type encodedSnapshot struct {
	data     []byte
	index    uint64
	log      *slog.Logger
	observer Observer
}

func (s *encodedSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return err
	}
	took := time.Since(start)
	if _, backup := sink.(*bufferSink); !backup && s.observer != nil {
		s.observer.Snapshot("persist", took, len(s.data))
		s.log.Info("snapshot taken", "index", s.index, "bytes", len(s.data), "duration", took, "id", sink.ID())
	}
	return nil
}

func (s *encodedSnapshot) Release() {}
