package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// What the node's disk can do to it, and what it does about it.
//
// Disk full. hashicorp/raft copes badly with a log store that cannot write.
// A leader whose StoreLogs fails answers the entries with the store's error
// and steps down (raft.go dispatchLogs); a follower rejects the entries and
// lags (appendEntries); a node that cannot persist a new term or vote
// panics (raft.go setCurrentTerm). Measured with every node's disk at 0
// bytes free: each new leader's LeaderStart fails to store, so it steps
// down again, and elections followed one another (term 79 after 50s) while
// every write waited out its client's deadline and failed with "no leader";
// the tiny term writes still fitted in pages bolt had freed, so no node
// panicked. So a leader never lets its disk run out: below
// diskReserveBytes free it refuses client writes with ErrDiskFull before
// proposing them (nothing is written, nothing acknowledged), and hands
// leadership to another voter, whose disk may have room. The reserve keeps
// room for the small writes that must not fail: terms and votes,
// LeaderStart and lease expiries. Writes resume by themselves once space is
// freed. A follower's disk is not guarded: raft gives it no way to refuse
// entries, so a full follower lags until space is freed.
//
// Corrupt data. Before Raft opens the node's data, checkStorage and openLog
// read all of it (the bolt stable store, the log, every snapshot) and turn
// damage into ErrCorruptData naming the file and what to do, instead of a
// panic in bolt or hashicorp/raft, or a silent fallback to an older
// snapshot whose log has been compacted away.

// ErrDiskFull is wrapped by Propose when the leader refused a write because
// its disk is (nearly) full. Nothing was written: the write was not
// applied, and may be retried once space is freed or leadership has moved.
var ErrDiskFull = errors.New("dlock: disk full")

// ErrCorruptData is wrapped by New when the node's data on disk is damaged:
// the bolt stable store does not open or read back, the log fails its
// checks (see internal/wal), or a snapshot fails its checksum. The error
// names the file and says what to do.
var ErrCorruptData = errors.New("dlock: corrupt data")

// diskReserveBytes is the free space, on each file system holding the
// node's Raft log or snapshots, below which a leader refuses client writes.
// It covers one largest entry (batchBytesMax) many times over (the log's
// segments grow by each append, nothing is allocated ahead), the bolt
// pages and freelist a stable-store commit rewrites, and the term, vote
// and LeaderStart writes Raft must never fail. Trade-off: a larger reserve
// refuses writes earlier on a small disk.
const diskReserveBytes = 32 << 20

// diskFullReason marks ErrDiskFull on the peer plane (google.rpc.ErrorInfo
// reason, domain "dlock"), so that a follower that forwarded a write gets
// ErrDiskFull back from the leader.
const diskFullReason = "DISK_FULL"

// diskFullError says which node's disk is full and how full.
type diskFullError struct {
	node    uint32
	dir     string
	free    uint64
	reserve uint64
}

func (e *diskFullError) Error() string {
	return fmt.Sprintf("dlock: disk full on node %d: %s free on the file system of %q, below the %s reserve; "+
		"writes are refused until space is freed there", e.node, byteSize(e.free), e.dir, byteSize(e.reserve))
}

func (e *diskFullError) Is(target error) bool { return target == ErrDiskFull }

// forwardedDiskFull is ErrDiskFull as a follower receives it from the
// leader: the leader's own message.
type forwardedDiskFull struct{ msg string }

func (e *forwardedDiskFull) Error() string        { return e.msg }
func (e *forwardedDiskFull) Is(target error) bool { return target == ErrDiskFull }

// diskFull returns ErrDiskFull (naming the directory and its free space)
// when a file system holding this node's Raft data has less than
// diskReserveBytes available, and then also hands leadership over if this
// node has led for a while (see stepAside). The batcher calls it once per
// entry it builds: one statfs per file system (2.5µs measured here).
func (n *Node) diskFull() error {
	for _, dir := range n.dataDirs() {
		free, err := freeBytes(dir)
		if err != nil || free >= diskReserveBytes {
			continue // a file system we cannot measure is not known to be full
		}
		err = &diskFullError{node: n.cfg.ID.SelfID, dir: dir, free: free, reserve: diskReserveBytes}
		n.stepAside(err)
		return err
	}
	return nil
}

// mayUseReserve reports whether p is written even when the disk is (nearly)
// full: LeaderStart (internal) and lease expiries are small and bounded,
// and refusing them would leave a leader that never serves, or holds that
// never end (and an expiry loop retrying at once). Client writes, renewals
// included, are refused.
func (p *proposal) mayUseReserve() bool {
	if p.internal {
		return true
	}
	for _, c := range p.cmds {
		if _, ok := c.Op.(*fsmpb.Command_Expire); !ok {
			return false
		}
	}
	return len(p.cmds) > 0
}

// dataDirs are the directories whose file systems hold the Raft log and
// the snapshots (often one and the same).
func (n *Node) dataDirs() []string {
	logDir, dataDir := filepath.Dir(n.cfg.LogStorePath()), n.cfg.DataDir()
	if filepath.Clean(logDir) == filepath.Clean(dataDir) {
		return []string{logDir}
	}
	return []string{logDir, dataDir}
}

// freeBytes is the space available to this process on dir's file system.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// stepAsideLeadMin is how long a leader must have led before a full disk
// makes it hand leadership over, in election timeouts. When every node's
// disk is full, leadership then moves at most once per this period instead
// of bouncing between nodes none of which can take writes.
const stepAsideLeadMin = 10

// stepAside hands leadership to the most up-to-date other voter if this
// node leads a cluster of several voters and has led for at least
// stepAsideLeadMin election timeouts. It waits for the transfer, which
// Raft bounds by an election timeout, and during which this leader could
// not take writes anyway; the proposals being refused get their answer
// after it.
func (n *Node) stepAside(cause error) {
	stamped, _, _, start := n.lead.snapshot()
	if !stamped || n.clock().Sub(start) < stepAsideLeadMin*n.timing.ElectionTimeout || n.voters() < 2 {
		return
	}
	if err := n.raft.LeadershipTransfer().Error(); err != nil && !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		n.log.Warn("disk full: could not hand leadership over", "err", err)
		return
	}
	n.log.Warn("disk full: handed leadership to another voter", "cause", cause)
}

// peerError is the status the peer plane answers a failed forwarded
// proposal with: ErrDiskFull keeps its meaning (ResourceExhausted with
// reason DISK_FULL); other errors are mapped as context errors.
func peerError(err error) error {
	if !errors.Is(err, ErrDiskFull) {
		return status.FromContextError(err).Err()
	}
	st := status.New(codes.ResourceExhausted, err.Error())
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: diskFullReason, Domain: "dlock"}); derr == nil {
		st = d
	}
	return st.Err()
}

// fromPeer turns the leader's answer to a forwarded proposal back into
// ErrDiskFull when it is one; other errors are returned as they are.
func fromPeer(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return err
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == diskFullReason {
			return &forwardedDiskFull{msg: st.Message()}
		}
	}
	return err
}

// byteSize formats n bytes for people: "812 B", "3.2 MiB".
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// corruptError is ErrCorruptData about one file, with what to do about it.
type corruptError struct {
	what string // "raft log", "raft stable store", "snapshot"
	path string
	err  error
	data []string // all of the node's data, for the advice (see nodeData)
}

func (e *corruptError) Error() string {
	return fmt.Sprintf(`dlock: corrupt data in %s %q: %v
This node cannot start from damaged data. Either:
  - if the rest of the cluster is healthy, move this node's data away and start it again:
    it rejoins the cluster and copies the state from the leader. Its data: %s; or
  - restore the whole cluster from a backup: give every node empty data and run
    "dlock snapshot restore BACKUP --config CONFIG" on each before starting it.
See docs/operations.md, "Disk full and corrupted data".`, e.what, e.path, e.err, quotedList(e.data))
}

// nodeData lists the node's Raft data: the stable store, the log and the
// snapshots.
func nodeData(cfg *config.Config) []string {
	return []string{cfg.LogStorePath(), cfg.WALDir(), snapshotDir(cfg)}
}

func snapshotDir(cfg *config.Config) string { return filepath.Join(cfg.DataDir(), "snapshots") }

// quotedList quotes each path and joins them with commas, for messages.
func quotedList(paths []string) string {
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = strconv.Quote(p)
	}
	return strings.Join(quoted, ", ")
}

func (e *corruptError) Unwrap() []error { return []error{ErrCorruptData, e.err} }

// storeLockWait bounds how long checkStorage waits for the lock on the
// bolt file, which another process holding it keeps for ever.
const storeLockWait = 2 * time.Second

// checkStorage reads the node's snapshots and its bolt stable store before
// Raft opens them: every snapshot's checksum, the stable store's term and
// vote, and every entry the bolt file still holds from before the log moved
// out of it (openLog checks the log itself as it opens it). Damage is
// returned as ErrCorruptData naming the file and what to do. A node with no
// data yet passes. It returns the newest snapshot's index (0 if none).
func checkStorage(cfg *config.Config) (uint64, error) {
	data := nodeData(cfg)
	corrupt := func(what, path string, err error) error {
		return &corruptError{what: what, path: path, err: err, data: data}
	}
	newest, err := checkSnapshots(snapshotDir(cfg), corrupt)
	if err != nil {
		return 0, err
	}
	return newest, checkLogStore(cfg.LogStorePath(), newest, corrupt)
}

// snapshotMeta is the part of hashicorp/raft's meta.json the check reads.
type snapshotMeta struct {
	ID    string
	Index uint64
	Term  uint64
	Size  int64
	CRC   []byte
}

// checkSnapshots verifies every complete snapshot in dir the way
// hashicorp/raft's FileSnapshotStore.Open does (meta.json decodes, the
// CRC-64 of state.bin matches), and returns the newest one's index (0 when
// there is none). Raft restores the newest snapshot that opens and silently
// falls back to older ones, so a damaged one is refused whichever it is.
func checkSnapshots(dir string, corrupt func(what, path string, err error) error) (uint64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dlock: read snapshots in %q: %w", dir, err)
	}
	var newest snapshotMeta
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue // raft ignores files and unfinished snapshots too
		}
		m, err := checkSnapshot(filepath.Join(dir, e.Name()), corrupt)
		if err != nil {
			return 0, err
		}
		if m.Term > newest.Term || (m.Term == newest.Term && m.Index > newest.Index) {
			newest = m
		}
	}
	return newest.Index, nil
}

func checkSnapshot(dir string, corrupt func(what, path string, err error) error) (snapshotMeta, error) {
	var m snapshotMeta
	metaPath := filepath.Join(dir, "meta.json")
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return m, corrupt("snapshot", metaPath, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, corrupt("snapshot", metaPath, fmt.Errorf("meta.json does not decode: %w", err))
	}
	statePath := filepath.Join(dir, "state.bin")
	f, err := os.Open(statePath)
	if err != nil {
		return m, corrupt("snapshot", statePath, err)
	}
	defer f.Close()
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	size, err := io.Copy(h, f)
	switch {
	case err != nil:
		return m, corrupt("snapshot", statePath, err)
	case size != m.Size:
		return m, corrupt("snapshot", statePath, fmt.Errorf("truncated or extended: %d bytes, meta.json says %d", size, m.Size))
	case string(h.Sum(nil)) != string(m.CRC):
		return m, corrupt("snapshot", statePath, fmt.Errorf("checksum mismatch: CRC-64 %x, meta.json says %x", h.Sum(nil), m.CRC))
	}
	return m, nil
}

// checkLogStore opens the bolt file the way the node will and reads back
// every entry it still holds. Bolt panics on some damage (an invalid
// freelist or page type) and faults on a truncated file it has
// memory-mapped; both come back as errors here, before anything is served.
func checkLogStore(path string, snapIndex uint64, corrupt func(what, path string, err error) error) error {
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil // a new node: bolt creates the file
	}
	err := readingMapped(func() error {
		if err := checkBoltSize(path); err != nil {
			return err
		}
		store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: storeLockWait}})
		if err != nil {
			return err
		}
		defer store.Close()
		return checkLogEntries(store, snapIndex)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bbolt.ErrTimeout):
		return fmt.Errorf("dlock: raft log %q is locked by another process: is another dlock node running with this data?", path)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("dlock: open raft log %q: the disk is full: free space on its file system and start the node again: %w", path, err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("dlock: open raft stable store %q: %w", path, err)
	}
	return corrupt("raft stable store", path, err)
}

// checkBoltSize opens the bolt file read-only and fails if it is shorter
// than the pages its meta page says are in use (a truncated file).
func checkBoltSize(path string) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: storeLockWait})
	if err != nil {
		return err
	}
	defer db.Close()
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return db.View(func(tx *bbolt.Tx) error {
		if used := tx.Size(); fi.Size() < used {
			return fmt.Errorf("truncated: %d bytes, its pages in use end at %d", fi.Size(), used)
		}
		return nil
	})
}

// checkLogEntries reads every entry between the store's first and last
// index, and the persisted term and vote.
func checkLogEntries(store *raftboltdb.BoltStore, snapIndex uint64) error {
	for _, key := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := store.Get([]byte(key))
		if err == nil && len(v) != 8 {
			return fmt.Errorf("stable store key %s: %d bytes, want 8", key, len(v))
		}
	}
	first, err := store.FirstIndex()
	if err != nil {
		return err
	}
	last, err := store.LastIndex()
	if err != nil {
		return err
	}
	if last == 0 {
		return nil
	}
	if first > snapIndex+1 {
		return fmt.Errorf("entries %d to %d are missing: the log starts at %d and the newest snapshot is at %d", snapIndex+1, first-1, first, snapIndex)
	}
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := store.GetLog(i, &l); err != nil {
			return fmt.Errorf("entry %d (of %d to %d): %w", i, first, last, err)
		}
		if l.Index != i {
			return fmt.Errorf("entry %d says it is entry %d", i, l.Index)
		}
	}
	return nil
}

// readingMapped runs fn, which reads a memory-mapped bolt file, turning a
// panic or a memory fault (SIGBUS past the end of a truncated file) into an
// error. WARNING: this is the one place a panic is recovered: bolt panics
// on corrupt bytes rather than returning an error, and here, before the node
// serves anything, the panic can only mean a damaged file. The bolt handle
// fn was using is abandoned (its lock and mapping stay until the process
// exits, which a node that fails to start does).
func readingMapped(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable: %v", r)
		}
	}()
	return fn()
}
