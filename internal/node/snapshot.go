package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/fsm"
)

// A backup ("dlock snapshot save", the Cluster.Snapshot RPC) is one file:
//
//	magic    8 bytes   "DLOCKSNP"
//	version  uint32    1 (big-endian, as every integer here)
//	index    uint64    the Raft index whose state the file holds
//	length   uint64    the payload's size in bytes
//	payload  length    a replica snapshot, as Raft's snapshots hold it: the
//	                   index again (uint64), then the state machine's records
//	                   (fsm.State.WriteSnapshot)
//	sha256   32 bytes  SHA-256 of everything before it
//
// The checksum and the length catch a truncated or damaged file before
// restore writes anything.
const (
	backupMagic      = "DLOCKSNP"
	backupVersion    = 1
	backupHeaderSize = 8 + 4 + 8 + 8
)

// Errors of RestoreSnapshot.
var (
	// ErrCorruptBackup: the backup is not a dlock snapshot, is truncated,
	// fails its checksum or does not decode. Nothing was written.
	ErrCorruptBackup = errors.New("dlock: corrupt backup")
	// ErrExistingState: the node's data directory already holds Raft state;
	// restore only seeds new nodes. Nothing was written.
	ErrExistingState = errors.New("dlock: node already has Raft state")
)

// explained is a sentinel with the full story of one occurrence.
type explained struct {
	msg  string
	kind error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.kind }

func corruptBackup(format string, args ...any) error {
	return &explained{msg: "dlock: corrupt backup: " + fmt.Sprintf(format, args...) + "; nothing was written", kind: ErrCorruptBackup}
}

// SaveSnapshot writes a consistent copy of the whole state, as of a
// linearizable point, to w and returns the log index it reflects. Every
// write acknowledged before the call is in it: the node learns a read index
// from the leader (see Read) and waits until it has applied it, so any node,
// a follower included, serves it from its own replica. It blocks until the
// copy is written or ctx ends; on an error w may hold part of the file.
func (n *Node) SaveSnapshot(ctx context.Context, w io.Writer) (uint64, error) {
	idx, err := n.ReadIndex(ctx)
	if err != nil {
		return 0, err
	}
	if err := n.WaitApplied(ctx, idx); err != nil {
		return 0, err
	}
	snap, err := n.replica.Snapshot()
	if err != nil {
		return 0, fmt.Errorf("dlock: snapshot: %w", err)
	}
	defer snap.Release()
	var sink bufferSink
	if err := snap.Persist(&sink); err != nil {
		return 0, fmt.Errorf("dlock: snapshot: %w", err)
	}
	payload := sink.Bytes()
	if len(payload) < 8 {
		return 0, fmt.Errorf("dlock: snapshot: %d bytes, want the 8-byte index first", len(payload))
	}
	index := binary.BigEndian.Uint64(payload)
	if index < idx {
		panic(fmt.Sprintf("dlock: snapshot at index %d, before read index %d it waited for", index, idx))
	}
	if err := writeBackup(w, index, payload); err != nil {
		return 0, fmt.Errorf("dlock: write snapshot: %w", err)
	}
	return index, nil
}

// bufferSink collects a replica snapshot in memory.
type bufferSink struct{ bytes.Buffer }

func (*bufferSink) ID() string    { return "backup" }
func (*bufferSink) Cancel() error { return nil }
func (*bufferSink) Close() error  { return nil }

func writeBackup(w io.Writer, index uint64, payload []byte) error {
	hdr := make([]byte, backupHeaderSize)
	copy(hdr, backupMagic)
	binary.BigEndian.PutUint32(hdr[8:], backupVersion)
	binary.BigEndian.PutUint64(hdr[12:], index)
	binary.BigEndian.PutUint64(hdr[20:], uint64(len(payload)))
	h := sha256.New()
	h.Write(hdr)
	h.Write(payload)
	for _, b := range [][]byte{hdr, payload, h.Sum(nil)} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// backup is a verified, decoded backup.
type backup struct {
	index uint64
	size  int64
	state *fsm.State
}

// readBackup reads a whole backup from r and verifies it: the header, the
// length, the checksum, and that the state decodes under limits (which
// checks every invariant). It reads r once, decoding as it goes.
func readBackup(r io.Reader, limits fsm.Limits) (backup, error) {
	cr := &countingReader{r: r}
	h := sha256.New()
	tr := io.TeeReader(cr, h)
	hdr := make([]byte, backupHeaderSize)
	if _, err := io.ReadFull(tr, hdr); err != nil {
		return backup{}, corruptBackup("not a dlock snapshot: %d bytes, shorter than the %d-byte header", cr.n, backupHeaderSize)
	}
	if string(hdr[:8]) != backupMagic {
		return backup{}, corruptBackup("not a dlock snapshot: it starts with %q, want %q", hdr[:8], backupMagic)
	}
	if v := binary.BigEndian.Uint32(hdr[8:]); v != backupVersion {
		return backup{}, corruptBackup("format version %d; this dlock reads version %d", v, backupVersion)
	}
	b := backup{index: binary.BigEndian.Uint64(hdr[12:])}
	length := binary.BigEndian.Uint64(hdr[20:])
	if b.index == 0 || length < 8 || length > 1<<62 {
		return backup{}, corruptBackup("header: index %d, payload %d bytes", b.index, length)
	}
	payload := io.LimitReader(tr, int64(length))
	var prefix [8]byte
	_, err := io.ReadFull(payload, prefix[:])
	var decodeErr error
	if err == nil {
		b.state, decodeErr = fsm.Restore(payload, limits)
		_, err = io.Copy(io.Discard, payload) // the rest, for the checksum
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return backup{}, fmt.Errorf("dlock: read backup: %w", err)
	}
	if want := int64(backupHeaderSize) + int64(length); cr.n < want {
		return backup{}, corruptBackup("truncated: %d bytes, the header promises %d", cr.n, want+sha256.Size)
	}
	sum := h.Sum(nil)
	stored := make([]byte, sha256.Size)
	if _, err := io.ReadFull(cr, stored); err != nil {
		return backup{}, corruptBackup("truncated: %d bytes, the header promises %d", cr.n, int64(backupHeaderSize)+int64(length)+sha256.Size)
	}
	if !bytes.Equal(sum, stored) {
		return backup{}, corruptBackup("checksum mismatch (SHA-256): the file was damaged after it was written")
	}
	if n, _ := io.ReadFull(cr, make([]byte, 1)); n > 0 {
		return backup{}, corruptBackup("unexpected data after the checksum at byte %d", cr.n-1)
	}
	if decodeErr != nil {
		return backup{}, corruptBackup("the checksum matches but the state does not decode (written by another dlock version?): %v", decodeErr)
	}
	if got := binary.BigEndian.Uint64(prefix[:]); got != b.index {
		return backup{}, corruptBackup("header index %d, payload index %d", b.index, got)
	}
	b.size = cr.n
	return b, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Restored describes a snapshot RestoreSnapshot wrote.
type Restored struct {
	// Index is the Raft index whose state the backup holds.
	Index uint64
	// Bytes is the backup's size.
	Bytes int64
	// Snapshot is the Raft snapshot directory written.
	Snapshot string
	// Members is the Raft configuration the snapshot carries: the config's.
	Members []config.Member
}

// restoredTerm is the Raft term of a restored snapshot. A new cluster starts
// at term 0 and elects its first leader in term 1, so the entries it appends
// after the snapshot carry terms no lower than the snapshot's, as Raft
// requires (the source cluster's term would make a node holding only the
// snapshot look more up to date than one holding later entries).
const restoredTerm = 1

// RestoreSnapshot seeds the data of one node of a new cluster from a backup
// read from r. Run it on every node of the new cluster, each with its own
// config, before starting any: it writes the backup's state into the node's
// Raft snapshot store (under cfg.DataDir()) with a Raft configuration made
// of cfg's members, so that on its first start the node restores that state
// instead of bootstrapping an empty cluster. It refuses with
// ErrExistingState if the node already has Raft state, and with
// ErrCorruptBackup if the backup is not intact; either way nothing is
// written. Relative paths in cfg are taken from the working directory, as
// by `dlock serve`.
func RestoreSnapshot(cfg *config.Config, r io.Reader) (Restored, error) {
	if err := checkNoState(cfg); err != nil {
		return Restored{}, err
	}
	limits := stateLimits(cfg.Limits)
	if err := limits.Validate(); err != nil {
		return Restored{}, fmt.Errorf("dlock: state machine limits: %w", err)
	}
	b, err := readBackup(r, limits)
	if err != nil {
		return Restored{}, err
	}
	dataDir := cfg.DataDir()
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return Restored{}, fmt.Errorf("dlock: create data dir %q: %w", dataDir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, snapshotsRetained, hclog.NewNullLogger())
	if err != nil {
		return Restored{}, fmt.Errorf("dlock: open snapshots in %q: %w", dataDir, err)
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, b.index, restoredTerm, clusterConfiguration(cfg), b.index, addrEncoder{})
	if err != nil {
		return Restored{}, fmt.Errorf("dlock: create snapshot in %q: %w", dataDir, err)
	}
	if err := writeReplicaSnapshot(sink, b); err != nil {
		_ = sink.Cancel()
		return Restored{}, fmt.Errorf("dlock: write snapshot in %q: %w", dataDir, err)
	}
	if err := sink.Close(); err != nil {
		return Restored{}, fmt.Errorf("dlock: write snapshot in %q: %w", dataDir, err)
	}
	// Pair assertion: Raft finds what was written, as the newest snapshot.
	list, err := snaps.List()
	if err != nil || len(list) != 1 || list[0].Index != b.index || list[0].ID != sink.ID() {
		return Restored{}, fmt.Errorf("dlock: snapshot %s written in %q does not list back (%d snapshots, %v)", sink.ID(), dataDir, len(list), err)
	}
	return Restored{Index: b.index, Bytes: b.size, Snapshot: filepath.Join(dataDir, "snapshots", sink.ID()), Members: cfg.Members()}, nil
}

// writeReplicaSnapshot writes b's state as replica.Snapshot does: the
// index, then the state machine's records.
func writeReplicaSnapshot(w io.Writer, b backup) error {
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], b.index)
	if _, err := w.Write(idx[:]); err != nil {
		return err
	}
	return b.state.WriteSnapshot(w)
}

// checkNoState fails with ErrExistingState if the node has a Raft stable
// store, a Raft log or any snapshot.
func checkNoState(cfg *config.Config) error {
	found := ""
	for _, path := range nodeData(cfg) {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		if entries, err := os.ReadDir(path); err == nil && len(entries) == 0 {
			continue // an empty directory holds no state
		}
		found = path
		break
	}
	if found == "" {
		return nil
	}
	return &explained{kind: ErrExistingState, msg: fmt.Sprintf("dlock: node %d already has Raft state (%q exists): "+
		"restore seeds the nodes of a new cluster and never overwrites a node's data. To replace this node's data, "+
		"stop the node, move %s away, then run restore again; nothing was written",
		cfg.ID.SelfID, found, quotedList(nodeData(cfg)))}
}

// clusterConfiguration is the Raft configuration of cfg's members, every one
// a voter: what bootstrapping a new cluster from cfg would write.
func clusterConfiguration(cfg *config.Config) raft.Configuration {
	var servers []raft.Server
	for _, m := range cfg.Members() {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: serverID(m.ID), Address: raft.ServerAddress(m.PeerAddress)})
	}
	return raft.Configuration{Servers: servers}
}

// addrEncoder is the one Transport method FileSnapshotStore.Create calls,
// for the snapshot's legacy peer list: it encodes a peer as
// NetworkTransport does, by its address.
type addrEncoder struct{ raft.Transport }

func (addrEncoder) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte { return []byte(addr) }
