// Package wal is dlock's Raft log store: an append-only log of segment
// files in one directory, with a checksum on every record and one
// fdatasync per append.
//
// It implements hashicorp/raft's LogStore and MonotonicLogStore. Raft
// appends entries in index order (StoreLogs), reads them back (GetLog),
// drops the oldest once a snapshot covers them and the newest when a new
// leader's log replaces them (DeleteRange). Nothing else is stored here:
// terms and votes stay in the stable store.
//
// Durability: StoreLogs returns after the entries are on disk (fdatasync of
// the segment, and of the directory when it created the segment; about
// once a second also of the checkpoint). Deletes are synced before they
// return too.
//
// Damage: Open reads every record and checks it. A record cut short at the
// very end of the log, or a bad record there with a sector of it never
// written (zeros), is a write a crash tore before it was synced, so before
// it was acknowledged: Open drops it and what follows, and says so in
// Recovered, unless that would cut the log behind its checkpoint. Anything
// else that fails a check (a checksum, a header, the order of the entries)
// is ErrCorrupt, naming the file and the offset, and nothing is changed.
// See docs/adr/0010.
package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// SegmentBytesDefault is the size past which appends go to a new segment.
// Smaller segments free disk sooner after a snapshot (whole segments are
// deleted); larger ones mean fewer files. The log holds about
// snapshot_threshold + trailing_logs entries.
const SegmentBytesDefault = 16 << 20

// Options tune a Log. The zero value is the default.
type Options struct {
	// SegmentBytes is the size past which appends start a new segment
	// file. Default (0) SegmentBytesDefault.
	SegmentBytes int64
}

// Log is a Raft log store in one directory. It is safe for concurrent use:
// reads go on while an append is being synced.
type Log struct {
	dir      string
	segBytes int64

	// writeMu makes appends and deletes one at a time. It is held across
	// an append's write and sync, which readers need not wait for (a
	// delete makes them wait: it holds mu too).
	writeMu sync.Mutex
	buf     []byte      // the records of one append; guarded by writeMu
	cp      *checkpoint // guarded by writeMu
	broken  error       // set when a failed append could not be undone; guarded by writeMu

	// mu guards what readers see. Appends take it only to publish
	// entries already on disk; deletes hold it while they close files.
	mu     sync.RWMutex
	segs   []*segment // by first index; the last is the one appended to
	first  uint64     // the first index not deleted; 0 when the log is empty
	closed bool

	recovered string
}

// segment is one file of the log.
type segment struct {
	first uint64 // the index of its first record, and its name
	path  string
	f     *os.File
	offs  []int64 // offs[i] is where entry first+i's record starts
	size  int64   // where its last record ends: the next append's offset
}

func (s *segment) last() uint64 { return s.first + uint64(len(s.offs)) - 1 }

// recordAt returns the extent of entry idx's record, which s holds.
func (s *segment) recordAt(idx uint64) (off, end int64) {
	i := idx - s.first
	off, end = s.offs[i], s.size
	if i+1 < uint64(len(s.offs)) {
		end = s.offs[i+1]
	}
	return off, end
}

// ErrClosed is returned by a Log's methods after Close.
var ErrClosed = errors.New("dlock wal: log is closed")

// Open opens the log in dir, creating dir if needed, and checks every
// record (see the package comment). A torn write at the end is cut off the
// file before Open returns; Recovered says what was cut.
func Open(dir string, opts Options) (*Log, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("dlock wal: create %q: %w", dir, err)
	}
	// The directory itself must outlast a crash before anything relies on
	// what is written in it.
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, segBytes: opts.SegmentBytes}
	if l.segBytes <= 0 {
		l.segBytes = SegmentBytesDefault
	}
	firsts, err := segmentFirsts(dir)
	if err != nil {
		return nil, err
	}
	if err := l.open(firsts); err != nil {
		l.closeFiles()
		return nil, err
	}
	if len(l.segs) > 0 {
		l.first = l.segs[0].first
	}
	return l, nil
}

// open loads the segments and the checkpoint, checks one against the
// other, and only then cuts a torn write off the newest segment.
func (l *Log) open(firsts []uint64) error {
	torn, err := l.load(firsts)
	if err != nil {
		return err
	}
	if l.cp, err = openCheckpoint(l.dir); err != nil {
		return err
	}
	if last := l.lastLocked(); last < l.cp.index {
		path := filepath.Join(l.dir, checkpointName)
		if len(l.segs) > 0 {
			path = l.segs[len(l.segs)-1].path
		}
		return &CorruptError{Path: path, Offset: torn.at, Reason: fmt.Sprintf(
			"the log ends at entry %d, but it was synced through entry %d (its checkpoint says): entries are missing from its end",
			last, l.cp.index)}
	}
	return torn.cut(l)
}

// segmentFirsts lists the segments in dir by their first index, in order.
func segmentFirsts(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dlock wal: read %q: %w", dir, err)
	}
	var firsts []uint64
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil || segmentName(first) != name {
			return nil, &CorruptError{Path: filepath.Join(dir, name), Reason: "a segment whose name is not its first index"}
		}
		firsts = append(firsts, first)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	return firsts, nil
}

// tornWrite is a write torn by a crash at the end of the newest segment,
// found by load and cut off by cut.
type tornWrite struct {
	path  string
	at    int64 // where the torn bytes start
	size  int64 // the file's size
	empty bool  // nothing intact is left: remove the file
}

// load reads and checks each segment in turn, the last one (the only one a
// crash can have torn) with the torn-write allowance. It changes nothing on
// disk.
func (l *Log) load(firsts []uint64) (tornWrite, error) {
	var torn tornWrite
	for i, first := range firsts {
		path := filepath.Join(l.dir, segmentName(first))
		tail := i == len(firsts)-1
		if n := len(l.segs); n > 0 && l.segs[n-1].last()+1 != first {
			prev := l.segs[n-1]
			return torn, &CorruptError{Path: path, Reason: fmt.Sprintf("entries %d to %d are missing: the segment before ends at %d",
				prev.last()+1, first-1, prev.last())}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return torn, fmt.Errorf("dlock wal: read %q: %w", path, err)
		}
		sc, err := scan(data, first, tail)
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				ce.Path = path
			}
			return torn, err
		}
		if sc.end < int64(len(data)) {
			torn = tornWrite{path: path, at: sc.end, size: int64(len(data)), empty: len(sc.offs) == 0}
		}
		if len(sc.offs) == 0 {
			continue // a newest segment created by an append that did not happen
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return torn, fmt.Errorf("dlock wal: open %q: %w", path, err)
		}
		l.segs = append(l.segs, &segment{first: first, path: path, f: f, offs: sc.offs, size: sc.end})
	}
	return torn, nil
}

// cut removes the torn write from disk, and says so in l.recovered.
func (t tornWrite) cut(l *Log) error {
	switch {
	case t.path == "":
		return nil
	case t.empty:
		if err := os.Remove(t.path); err != nil {
			return fmt.Errorf("dlock wal: remove empty segment %q: %w", t.path, err)
		}
		if err := syncDir(l.dir); err != nil {
			return err
		}
	default:
		if err := truncateSync(l.segs[len(l.segs)-1].f, t.at); err != nil {
			return fmt.Errorf("dlock wal: cut torn write off %q: %w", t.path, err)
		}
	}
	l.recovered = fmt.Sprintf("dropped %d bytes torn by a crash at the end of %s (from byte %d), after entry %d",
		t.size-t.at, t.path, t.at, l.lastLocked())
	return nil
}

// Recovered describes the torn write Open cut off the end of the log, or
// is "" if there was none.
func (l *Log) Recovered() string { return l.recovered }

// IsMonotonic tells Raft that entries are appended in index order only, so
// that after installing a snapshot it deletes the whole log instead of
// leaving older entries and a gap before the next append.
func (l *Log) IsMonotonic() bool { return true }

// FirstIndex returns the first index in the log, 0 if it is empty.
func (l *Log) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.first, nil
}

// LastIndex returns the last index in the log, 0 if it is empty.
func (l *Log) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastLocked(), nil
}

func (l *Log) lastLocked() uint64 {
	if len(l.segs) == 0 {
		return 0
	}
	return l.segs[len(l.segs)-1].last()
}

// GetLog reads entry idx into out, or returns raft.ErrLogNotFound. The
// record's checksums are checked again: damage done since Open is an
// error, never a wrong entry.
func (l *Log) GetLog(idx uint64, out *raft.Log) error {
	rec, path, off, err := l.readRecord(idx)
	if err != nil {
		return err
	}
	end, reason := nextRecord(rec, 0)
	if reason == "" && end != int64(len(rec)) {
		reason = "a record whose length does not match the log's index"
	}
	if reason == "" {
		reason = decodeEntry(rec, idx, out)
	}
	if reason != "" {
		return &CorruptError{Path: path, Offset: off, Reason: fmt.Sprintf("%s (entry %d)", reason, idx)}
	}
	return nil
}

// readRecord reads entry idx's whole record.
func (l *Log) readRecord(idx uint64) (rec []byte, path string, off int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, "", 0, ErrClosed
	}
	if l.first == 0 || idx < l.first || idx > l.lastLocked() {
		return nil, "", 0, raft.ErrLogNotFound
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].last() >= idx })
	s := l.segs[i]
	off, end := s.recordAt(idx)
	rec = make([]byte, end-off)
	if _, err := s.f.ReadAt(rec, off); err != nil {
		return nil, "", 0, fmt.Errorf("dlock wal: read entry %d from %q: %w", idx, s.path, err)
	}
	return rec, s.path, off, nil
}

// StoreLog appends one entry; see StoreLogs.
func (l *Log) StoreLog(e *raft.Log) error { return l.StoreLogs([]*raft.Log{e}) }

// StoreLogs appends entries, which must continue the log (the first at
// LastIndex()+1, each after the one before) unless the log is empty, and
// returns once they are on disk. On an error nothing was appended.
func (l *Log) StoreLogs(entries []*raft.Log) error {
	if len(entries) == 0 {
		return nil
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.RLock()
	closed, last := l.closed, l.lastLocked()
	var tail *segment
	if len(l.segs) > 0 {
		tail = l.segs[len(l.segs)-1]
	}
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if err := checkContiguous(entries, last); err != nil {
		return err
	}
	if l.broken != nil {
		return l.broken
	}
	for _, e := range entries {
		if n := encodedLen(e) - recordHeaderLen; n > RecordMax {
			return fmt.Errorf("dlock wal: entry %d of %d bytes is over the %d-byte maximum", e.Index, n, RecordMax)
		}
	}
	if tail == nil || tail.size >= l.segBytes {
		return l.appendNewSegment(entries)
	}
	offs := l.encode(entries, tail.size)
	if err := writeSync(tail.f, l.buf, tail.size); err != nil {
		// Cut a partial write back off, so the next append lands where
		// the index expects it. If that fails too, appends stop until the
		// node restarts, when Open drops the partial write.
		if terr := truncateSync(tail.f, tail.size); terr != nil {
			l.broken = fmt.Errorf("dlock wal: a failed append left bytes after entry %d in %q that could not be cut off (%v); appends resume after a restart", last, tail.path, terr)
		}
		return fmt.Errorf("dlock wal: append entries %d to %d to %q: %w",
			entries[0].Index, entries[len(entries)-1].Index, tail.path, err)
	}
	l.mu.Lock()
	tail.offs = append(tail.offs, offs...)
	tail.size += int64(len(l.buf))
	l.mu.Unlock()
	l.maybeCheckpoint(entries[len(entries)-1].Index)
	return nil
}

// maybeCheckpoint records that the log is synced through last, if the
// checkpoint is older than checkpointEvery. A failure is not the append's:
// its entries are on disk; the next append tries again.
func (l *Log) maybeCheckpoint(last uint64) {
	if now := time.Now(); now.Sub(l.cp.at) >= checkpointEvery {
		_ = l.cp.set(last, now)
	}
}

// lowerCheckpoint lowers the checkpoint to index before entries after it
// are deleted.
func (l *Log) lowerCheckpoint(index uint64) error {
	if l.cp.index <= index {
		return nil
	}
	return l.cp.set(index, time.Now())
}

func checkContiguous(entries []*raft.Log, last uint64) error {
	if last != 0 && entries[0].Index != last+1 {
		return fmt.Errorf("dlock wal: append entry %d after entry %d: entries must be contiguous", entries[0].Index, last)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].Index != entries[i-1].Index+1 {
			return fmt.Errorf("dlock wal: append entry %d after entry %d: entries must be contiguous", entries[i].Index, entries[i-1].Index)
		}
	}
	if entries[0].Index == 0 {
		return errors.New("dlock wal: append entry 0: indexes start at 1")
	}
	return nil
}

// encode fills l.buf with entries' records and returns their offsets, the
// first record going at base.
func (l *Log) encode(entries []*raft.Log, base int64) []int64 {
	offs := make([]int64, len(entries))
	l.buf = l.buf[:0]
	for i, e := range entries {
		offs[i] = base + int64(len(l.buf))
		l.buf = appendRecord(l.buf, e)
	}
	return offs
}

// appendNewSegment writes entries into a new segment named by the first
// one, and makes it the one appended to.
func (l *Log) appendNewSegment(entries []*raft.Log) error {
	first := entries[0].Index
	path := filepath.Join(l.dir, segmentName(first))
	var hdr [headerLen]byte
	putHeader(hdr[:], first)
	offs := l.encode(entries, headerLen)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("dlock wal: create segment %q: %w", path, err)
	}
	err = writeSync(f, append(hdr[:], l.buf...), 0)
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		f.Close()
		if rerr := os.Remove(path); rerr != nil {
			l.broken = fmt.Errorf("dlock wal: a failed append left segment %q that could not be removed (%v); appends resume after a restart", path, rerr)
		}
		return fmt.Errorf("dlock wal: write segment %q: %w", path, err)
	}
	s := &segment{first: first, path: path, f: f, offs: offs, size: headerLen + int64(len(l.buf))}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	if l.first == 0 {
		l.first = first
	}
	l.mu.Unlock()
	l.maybeCheckpoint(entries[len(entries)-1].Index)
	return nil
}

// DeleteRange deletes entries min to max (inclusive). Raft deletes from
// either end: the oldest entries once a snapshot covers them, the newest
// when a leader's log replaces them, or all of them. A range inside the
// log, with entries kept on both sides, is refused.
func (l *Log) DeleteRange(min, max uint64) error {
	defer l.lockAll()()
	if l.closed {
		return ErrClosed
	}
	last := l.lastLocked()
	switch {
	case l.first == 0 || max < l.first || min > last || min > max:
		return nil
	case min <= l.first && max >= last:
		return l.deleteAll()
	case min <= l.first:
		return l.deleteHead(max)
	case max >= last:
		return l.deleteTail(min)
	}
	return fmt.Errorf("dlock wal: delete entries %d to %d: only the oldest or newest entries of the log (%d to %d) can be deleted",
		min, max, l.first, last)
}

// deleteAll removes every segment, newest first: a crash part way leaves
// the oldest entries, contiguous, as they were.
func (l *Log) deleteAll() error {
	if err := l.lowerCheckpoint(0); err != nil {
		return err
	}
	for len(l.segs) > 0 {
		s := l.segs[len(l.segs)-1]
		if err := removeSegment(s); err != nil {
			return err
		}
		l.segs = l.segs[:len(l.segs)-1]
	}
	l.first = 0
	return nil
}

// deleteHead deletes entries up to max, which leaves at least one: the
// segments wholly covered are removed, oldest first; in the segment that
// keeps entries, the deleted ones stay on disk (Open finds them again,
// which Raft allows) until the whole segment goes.
func (l *Log) deleteHead(max uint64) error {
	for len(l.segs) > 1 && l.segs[0].last() <= max {
		if err := removeSegment(l.segs[0]); err != nil {
			l.first = l.segs[0].first // the removals so far stand
			return err
		}
		l.segs = l.segs[1:]
	}
	l.first = max + 1
	return nil
}

// deleteTail deletes entries from min on, which leaves at least one:
// segments wholly covered are removed, newest first, then the segment
// holding min is cut short before it.
func (l *Log) deleteTail(min uint64) error {
	if err := l.lowerCheckpoint(min - 1); err != nil {
		return err
	}
	for len(l.segs) > 0 && l.segs[len(l.segs)-1].first >= min {
		if err := removeSegment(l.segs[len(l.segs)-1]); err != nil {
			return err
		}
		l.segs = l.segs[:len(l.segs)-1]
	}
	s := l.segs[len(l.segs)-1]
	if min > s.last() {
		return nil
	}
	off, _ := s.recordAt(min)
	if err := truncateSync(s.f, off); err != nil {
		return fmt.Errorf("dlock wal: delete entries from %d in %q: %w", min, s.path, err)
	}
	s.offs = s.offs[:min-s.first]
	s.size = off
	return nil
}

// removeSegment removes s's file and syncs the directory, so that removals
// reach the disk in the order they are made; only then is s closed, so a
// failed removal leaves s as it was.
func removeSegment(s *segment) error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dlock wal: remove segment %q: %w", s.path, err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	s.f.Close()
	return nil
}

// lockAll excludes appends, deletes and readers, and returns the unlock.
func (l *Log) lockAll() (unlock func()) {
	l.writeMu.Lock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		l.writeMu.Unlock()
	}
}

// Close closes the log's files. It is idempotent; every other method fails
// with ErrClosed afterwards.
func (l *Log) Close() error {
	defer l.lockAll()()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	if last := l.lastLocked(); l.cp.index != last {
		errs = append(errs, l.cp.set(last, time.Now()))
	}
	return errors.Join(append(errs, l.closeFiles())...)
}

func (l *Log) closeFiles() error {
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	if l.cp != nil {
		errs = append(errs, l.cp.f.Close())
	}
	return errors.Join(errs...)
}
