package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// entry is a Raft entry whose fields all depend on i, so a mix-up shows.
func entry(i uint64) *raft.Log {
	l := &raft.Log{Index: i, Term: 1 + i/10, Type: raft.LogType(i % 4), Data: []byte(fmt.Sprintf("data-%d", i))}
	if i%3 == 0 {
		l.Extensions = []byte{byte(i), 1, 2}
	}
	if i%2 == 0 {
		l.AppendedAt = time.Unix(1_800_000_000, int64(i)).UTC()
	}
	return l
}

func entries(from, to uint64) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, entry(i))
	}
	return ls
}

// smallSegments makes a segment hold a few dozen entries.
var smallSegments = Options{SegmentBytes: 1 << 10}

func open(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := Open(dir, smallSegments)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func store(t *testing.T, l *Log, from, to uint64) {
	t.Helper()
	for i := from; i <= to; i += 7 { // batches of up to 7
		if err := l.StoreLogs(entries(i, min(i+6, to))); err != nil {
			t.Fatalf("store %d..: %v", i, err)
		}
	}
}

// wantRange checks the log holds exactly entries first to last, each
// read back as written.
func wantRange(t *testing.T, l *Log, first, last uint64) {
	t.Helper()
	gotFirst, _ := l.FirstIndex()
	gotLast, _ := l.LastIndex()
	if gotFirst != first || gotLast != last {
		t.Fatalf("log holds %d to %d, want %d to %d", gotFirst, gotLast, first, last)
	}
	for i := first; i <= last && last != 0; i++ {
		var got raft.Log
		if err := l.GetLog(i, &got); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		want := entry(i)
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
			!bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("entry %d read back as %+v, want %+v", i, got, *want)
		}
	}
	for _, i := range []uint64{first - 1, last + 1} {
		var got raft.Log
		if err := l.GetLog(i, &got); i != 0 && !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("get %d outside %d to %d: %v, want ErrLogNotFound", i, first, last, err)
		}
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestEntriesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	wantRange(t, l, 0, 0)
	store(t, l, 1, 300)
	wantRange(t, l, 1, 300)
	if n := len(segments(t, dir)); n < 5 {
		t.Fatalf("%d segments for 300 entries in 1 KiB segments; want several", n)
	}
	l.Close()
	l = open(t, dir)
	wantRange(t, l, 1, 300)
	if l.Recovered() != "" {
		t.Errorf("Recovered() = %q on an undamaged log, want nothing", l.Recovered())
	}
	store(t, l, 301, 310)
	wantRange(t, l, 1, 310)
}

func TestAppendsMustContinueTheLog(t *testing.T) {
	l := open(t, t.TempDir())
	store(t, l, 5, 10) // an empty log starts anywhere: after a snapshot, say
	for _, give := range [][]*raft.Log{entries(12, 12), entries(10, 11), {entry(11), entry(13)}} {
		if err := l.StoreLogs(give); err == nil {
			t.Errorf("appending %d.. after 10 succeeded; want it refused", give[0].Index)
		}
	}
	wantRange(t, l, 5, 10)
}

func TestDeleteRange(t *testing.T) {
	rows := []struct {
		name                string
		min, max            uint64 // min 0 with max 200: the newest segment's first index
		wantFirst, wantLast uint64 // wantLast 0: the log is empty
	}{
		{"oldest, whole segments and part of one", 1, 100, 101, 200},
		{"newest, from inside a segment", 150, 200, 1, 149},
		{"newest, from a segment's start", 0, 200, 1, 0},
		{"all", 1, 200, 0, 0},
		{"all and more", 0, 1000, 0, 0},
		{"nothing: past the end", 201, 300, 1, 200},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			l := open(t, dir)
			store(t, l, 1, 200)
			if r.min == 0 && r.max == 200 {
				r.min = l.segs[len(l.segs)-1].first
				r.wantLast = r.min - 1
			}
			if err := l.DeleteRange(r.min, r.max); err != nil {
				t.Fatal(err)
			}
			wantRange(t, l, r.wantFirst, r.wantLast)
			crash(l) // the delete was synced, the checkpoint lowered with it
			l = open(t, dir)
			// A head delete inside a segment comes back after a reopen: the
			// log may start up to a segment (under 40 entries) earlier.
			first, _ := l.FirstIndex()
			if first > r.wantFirst || first+40 < r.wantFirst {
				t.Fatalf("after reopen the log starts at %d, want %d or a little before", first, r.wantFirst)
			}
			wantRange(t, l, first, r.wantLast)
			next := r.wantLast + 1
			if r.wantLast == 0 {
				next = 500 // an emptied log takes any index, as after a snapshot install
			}
			store(t, l, next, next+20)
		})
	}
}

func TestDeleteFromTheMiddleIsRefused(t *testing.T) {
	l := open(t, t.TempDir())
	store(t, l, 1, 100)
	if err := l.DeleteRange(40, 60); err == nil {
		t.Fatal("deleting 40 to 60 of 1 to 100 succeeded; want it refused")
	}
	wantRange(t, l, 1, 100)
}

// damage changes a closed log's files in dir.
type damage func(t *testing.T, dir string, segs []string)

func overwrite(seg func([]string) string, at func(size int64) int64, b []byte) damage {
	return func(t *testing.T, dir string, segs []string) {
		path := seg(segs)
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		if _, err := f.WriteAt(b, at(fi.Size())); err != nil {
			t.Fatal(err)
		}
	}
}

func truncate(seg func([]string) string, to func(size int64) int64) damage {
	return func(t *testing.T, dir string, segs []string) {
		path := seg(segs)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, to(fi.Size())); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	newest = func(s []string) string { return s[len(s)-1] }
	older  = func(s []string) string { return s[1] }
	middle = func(size int64) int64 { return size / 2 }
	end    = func(size int64) int64 { return size }
)

// Damage is told from a crash: a write torn at the very end of the log was
// never acknowledged, and is dropped; anything else refuses to open.
func TestDamage(t *testing.T) {
	garbage := []byte("garbage!")
	rows := []struct {
		name     string
		damage   damage
		wantErr  bool
		wantLast uint64 // when it opens
	}{
		{"newest segment cut inside its last record", truncate(newest, func(s int64) int64 { return s - 3 }), false, 299},
		{"newest segment cut inside a record header", truncate(newest, func(s int64) int64 { return s - recordLenOf(300) + 5 }), false, 299},
		{"newest segment extended with zeros", overwrite(newest, end, make([]byte, 4096)), false, 300},
		{"newest segment cut inside its last record after a clean stop", stopped(truncate(newest, func(s int64) int64 { return s - 3 })), true, 0},
		{"checkpoint overwritten", func(t *testing.T, dir string, _ []string) {
			os.WriteFile(filepath.Join(dir, checkpointName), []byte("garbage!garbage!"[:checkpointLen]), 0o600)
		}, true, 0},
		{"newest segment's last record zeros to the end", overwrite(newest, func(s int64) int64 { return s - recordLenOf(300) }, make([]byte, 4096)), false, 299},
		// A crash on an appending file system leaves a prefix of the write;
		// unwritten space with written data after it is not told from damage.
		{"newest segment's last record zeroed in part", overwrite(newest, func(s int64) int64 { return s - recordLenOf(300) }, make([]byte, 20)), true, 0},
		{"newest segment overwritten in the middle", overwrite(newest, middle, garbage), true, 0},
		{"newest segment's last record overwritten", overwrite(newest, func(s int64) int64 { return s - 4 }, []byte{1, 2, 3, 4}), true, 0},
		{"newest segment extended with garbage", overwrite(newest, end, bytes.Repeat(garbage, 8)), true, 0},
		{"older segment overwritten in the middle", overwrite(older, middle, garbage), true, 0},
		{"older segment cut short", truncate(older, func(s int64) int64 { return s - 3 }), true, 0},
		{"oldest segment cut to its header", truncate(func(s []string) string { return s[0] }, func(int64) int64 { return headerLen }), true, 0},
		{"older segment's header overwritten", overwrite(older, func(int64) int64 { return 0 }, garbage), true, 0},
		{"older segment removed", func(t *testing.T, _ string, s []string) { os.Remove(older(s)) }, true, 0},
		{"a stray segment name", func(t *testing.T, dir string, _ []string) {
			os.WriteFile(filepath.Join(dir, "7.wal"), nil, 0o600)
		}, true, 0},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			l := open(t, dir)
			store(t, l, 1, 300)
			crash(l)
			r.damage(t, dir, segments(t, dir))
			l, err := Open(dir, smallSegments)
			if r.wantErr {
				var ce *CorruptError
				if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path == "" {
					t.Fatalf("open damaged log: %v; want ErrCorrupt naming the file", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("open after a torn write: %v; want it to open", err)
			}
			defer l.Close()
			wantRange(t, l, 1, r.wantLast)
			if r.wantLast < 300 && l.Recovered() == "" {
				t.Error("Recovered() is empty after dropping a torn write")
			}
			store(t, l, r.wantLast+1, 320) // appends go on where the torn write was
			l.Close()
			wantRange(t, open(t, dir), 1, 320)
		})
	}
}

// crash leaves l as a crash would: its files as they are, its checkpoint
// not brought up to date as Close does.
func crash(l *Log) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.closeFiles()
}

// stopped applies d after the log was closed cleanly, which brings its
// checkpoint up to date.
func stopped(d damage) damage {
	return func(t *testing.T, dir string, segs []string) {
		l, err := Open(dir, smallSegments)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		d(t, dir, segs)
	}
}

// A log cut short behind its checkpoint is refused even after a crash: a
// torn write can take only what was appended since.
func TestCheckpointCatchesACutBehindIt(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	store(t, l, 1, 308)
	l.cp.at = time.Time{} // the checkpoint is due
	store(t, l, 309, 309)
	store(t, l, 310, 310)
	crash(l)
	truncate(newest, middle)(t, dir, segments(t, dir))
	if _, err := Open(dir, smallSegments); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open a log cut behind its checkpoint: %v, want ErrCorrupt", err)
	}
}

// recordLenOf is the size of entry i's record.
func recordLenOf(i uint64) int64 { return int64(encodedLen(entry(i))) }

func TestATornNewSegmentIsDropped(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	store(t, l, 1, 100)
	l.Close()
	for _, give := range [][]byte{nil, magic[:2], make([]byte, 40)} {
		if err := os.WriteFile(filepath.Join(dir, segmentName(101)), give, 0o600); err != nil {
			t.Fatal(err)
		}
		l := open(t, dir)
		wantRange(t, l, 1, 100)
		store(t, l, 101, 110)
		l.DeleteRange(101, 110)
		l.Close()
	}
}

func TestGetLogChecksAgain(t *testing.T) {
	dir := t.TempDir()
	l := open(t, dir)
	store(t, l, 1, 10)
	s := l.segs[0]
	off, _ := s.recordAt(5)
	if _, err := s.f.WriteAt([]byte("xx"), off+recordHeaderLen+3); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := l.GetLog(5, &got); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get an entry damaged since open: %v, want ErrCorrupt", err)
	}
}

// Readers go on while entries are appended and the oldest deleted, as Raft
// does from its replication and snapshot goroutines.
func TestConcurrentReadsAppendsAndDeletes(t *testing.T) {
	l := open(t, t.TempDir())
	store(t, l, 1, 50)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				first, _ := l.FirstIndex()
				last, _ := l.LastIndex()
				for i := last; i >= first && i > last-20; i-- {
					var got raft.Log
					err := l.GetLog(i, &got)
					if errors.Is(err, raft.ErrLogNotFound) {
						continue // deleted since: the head moves on
					}
					if err != nil || got.Index != i || !bytes.Equal(got.Data, entry(i).Data) {
						errs <- fmt.Errorf("get %d: %+v, %v", i, got, err)
						return
					}
				}
			}
		}()
	}
	for next := uint64(51); next < 2000; next += 10 {
		if err := l.StoreLogs(entries(next, next+9)); err != nil {
			t.Fatal(err)
		}
		if next%200 == 1 {
			if err := l.DeleteRange(1, next-100); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A crash can leave any sector of the last write unwritten: the file
// system may make the file's new size durable before its data, from a
// block boundary inside a record, or write the sectors in any order.
// Such a record is dropped, with what follows it; the same record with
// garbage where the zeros are is refused.
func TestUnwrittenSectorsAreATornWrite(t *testing.T) {
	big := &raft.Log{Index: 6, Term: 1, Data: bytes.Repeat([]byte("x"), 10_000)}
	rows := []struct {
		name    string
		from    func(pos int64) int64 // where the damage starts, pos being the big record's
		n       int64
		fill    byte
		wantErr bool
	}{
		{"zeros from a block boundary to the end", func(pos int64) int64 { return (pos/4096 + 1) * 4096 }, 1 << 20, 0, false},
		{"one sector in the middle never written", func(pos int64) int64 { return (pos/512 + 4) * 512 }, 512, 0, false},
		{"a sector in the middle overwritten", func(pos int64) int64 { return (pos/512 + 4) * 512 }, 512, 'g', true},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			l := open(t, dir)
			store(t, l, 1, 5)
			if err := l.StoreLog(big); err != nil {
				t.Fatal(err)
			}
			seg := l.segs[len(l.segs)-1]
			pos, end := seg.recordAt(6)
			crash(l)
			from := r.from(pos)
			n := min(r.n, end-from)
			if r.n > end-from { // zeros to the end: cut the file there, then extend it
				os.Truncate(seg.path, from)
				n = end - from
			}
			overwrite(func([]string) string { return seg.path }, func(int64) int64 { return from }, bytes.Repeat([]byte{r.fill}, int(n)))(t, dir, nil)
			l2, err := Open(dir, smallSegments)
			if r.wantErr {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("open: %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("open after a torn write: %v", err)
			}
			defer l2.Close()
			wantRange(t, l2, 1, 5)
		})
	}
}
