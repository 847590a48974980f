package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/wal"
)

// The Raft log lives in a segmented write-ahead log (internal/wal) in
// cfg.WALDir(); the bolt file at cfg.LogStorePath() keeps only the stable
// store (terms, votes, the node's client address). Nodes from before the
// log moved there have their entries in the bolt file, and openLog moves
// them over. See docs/adr/0010.

// migrateBatch is how many entries one append of the migration carries.
const migrateBatch = 1024

// openLog opens the node's Raft log, moving entries out of the bolt store
// first if it still holds some, and checks it against the newest snapshot
// (at snapIndex, 0 if none): a log that starts after snapIndex+1 has lost
// entries and is ErrCorruptData; a log that ends before snapIndex is wholly
// covered by the snapshot (a crash interrupted Raft deleting it after a
// snapshot install) and is emptied.
func openLog(cfg *config.Config, bolt *raftboltdb.BoltStore, snapIndex uint64, log *slog.Logger) (*wal.Log, error) {
	dir := cfg.WALDir()
	corrupt := func(path string, err error) error {
		return &corruptError{what: "raft log", path: path, err: err, data: nodeData(cfg)}
	}
	boltFirst, boltLast, err := boltRange(bolt)
	if err != nil {
		return nil, corrupt(cfg.LogStorePath(), err)
	}
	if boltLast != 0 {
		// Until bolt's entries are gone, bolt is the truth: a log left by
		// an interrupted migration is discarded and the copy starts over.
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("dlock: remove the unfinished raft log %q: %w", dir, err)
		}
	}
	l, err := wal.Open(dir, wal.Options{})
	if ce := (*wal.CorruptError)(nil); errors.As(err, &ce) {
		return nil, corrupt(ce.Path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("dlock: open raft log %q: %w", dir, err)
	}
	if r := l.Recovered(); r != "" {
		log.Warn("raft log: a write torn by a crash, never acknowledged, was dropped", "detail", r)
	}
	if boltLast != 0 {
		if err := migrate(bolt, l, boltFirst, boltLast); err != nil {
			l.Close()
			return nil, fmt.Errorf("dlock: move raft log entries %d to %d from %q to %q: %w", boltFirst, boltLast, cfg.LogStorePath(), dir, err)
		}
		log.Info("raft log moved out of the stable store", "entries", boltLast-boltFirst+1, "from", cfg.LogStorePath(), "to", dir)
	}
	if err := checkAgainstSnapshot(l, snapIndex, log); err != nil {
		l.Close()
		return nil, corrupt(dir, err)
	}
	return l, nil
}

func boltRange(bolt *raftboltdb.BoltStore) (first, last uint64, err error) {
	if first, err = bolt.FirstIndex(); err != nil {
		return 0, 0, err
	}
	last, err = bolt.LastIndex()
	return first, last, err
}

// migrate copies entries first to last from bolt into l, synced, and only
// then deletes them from bolt.
func migrate(bolt *raftboltdb.BoltStore, l *wal.Log, first, last uint64) error {
	batch := make([]*raft.Log, 0, migrateBatch)
	for i := first; i <= last; i++ {
		e := new(raft.Log)
		if err := bolt.GetLog(i, e); err != nil {
			return fmt.Errorf("read entry %d: %w", i, err)
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) || i == last {
			if err := l.StoreLogs(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return bolt.DeleteRange(first, last)
}

// checkAgainstSnapshot checks that the log continues from the newest
// snapshot, emptying a log that ends before it.
func checkAgainstSnapshot(l *wal.Log, snapIndex uint64, log *slog.Logger) error {
	first, _ := l.FirstIndex()
	last, _ := l.LastIndex()
	switch {
	case last == 0:
		return nil
	case first > snapIndex+1:
		return fmt.Errorf("entries %d to %d are missing: the log starts at %d and the newest snapshot is at %d", snapIndex+1, first-1, first, snapIndex)
	case last < snapIndex:
		log.Info("raft log: dropping entries the newest snapshot covers", "first", first, "last", last, "snapshot", snapIndex)
		return l.DeleteRange(first, last)
	}
	return nil
}
