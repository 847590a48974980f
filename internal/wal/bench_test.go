package wal

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// benchmarkAppend appends one 100-byte entry per StoreLogs, synced, as a
// follower does for each commit at low load.
func benchmarkAppend(b *testing.B, store raft.LogStore) {
	data := make([]byte, 100)
	for i := 0; i < b.N; i++ {
		if err := store.StoreLogs([]*raft.Log{{Index: uint64(i + 1), Term: 1, Data: data}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend is the log's cost per append: a write and an fdatasync.
func BenchmarkAppend(b *testing.B) {
	l, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	benchmarkAppend(b, l)
}

// BenchmarkAppendBolt is the same append to raft-boltdb, the log store
// dlock used before, for comparison: its commit syncs twice.
func BenchmarkAppendBolt(b *testing.B) {
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "raft.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	benchmarkAppend(b, store)
}
