package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends. Call it before starting the processes that use it,
// so that they are stopped (their cleanup runs first) before the unmount.
// It needs root; without it the test fails and says so.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("this test needs root, to mount a tmpfs as a node's small disk: mount -t tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// dataOn makes node id's data directory (var/) a directory on the file
// system mounted at mnt. The node must not have run yet.
func dataOn(t *testing.T, c *testcluster.Cluster, id int, mnt string) {
	t.Helper()
	target := filepath.Join(mnt, fmt.Sprintf("node%d", id))
	if err := os.MkdirAll(target, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, c.DataDir(id)); err != nil {
		t.Fatal(err)
	}
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fill writes a filler file on mnt's file system until at most left bytes
// are free, and returns its path.
func fill(t *testing.T, mnt string, left int64) string {
	t.Helper()
	path := filepath.Join(mnt, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for free := freeBytes(t, mnt); free > left; free = freeBytes(t, mnt) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), free-left)]); err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
	}
	t.Logf("filled %s: %d KiB free", mnt, freeBytes(t, mnt)>>10)
	return path
}

// putAll puts keys until one fails, and returns those acknowledged.
func putAll(ctx context.Context, c *client.Client, prefix string, n int) ([]string, error) {
	var acked []string
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("%s/%03d", prefix, i)
		if _, err := c.Put(ctx, key, []byte(key)); err != nil {
			return acked, fmt.Errorf("put %s: %w", key, err)
		}
		acked = append(acked, key)
	}
	return acked, nil
}

func checkKeys(t *testing.T, ctx context.Context, c *client.Client, keys []string) {
	t.Helper()
	for _, key := range keys {
		if v, err := c.Get(ctx, key); err != nil || string(v) != key {
			t.Errorf("get %s (acknowledged): %q, %v; want %q", key, v, err, key)
		}
	}
}

// When the disks of a cluster fill up, a write fails at once with an error
// that says which node's disk is full, instead of hanging; nothing
// acknowledged is lost, reads go on, and writes succeed again as soon as
// space is freed.
func TestDiskFullRefusesWritesAndRecovers(t *testing.T) {
	mnt := mountTmpfs(t, 48<<20) // one small disk under all three nodes
	c := testcluster.Prepare(t, 3)
	for _, nd := range c.Nodes {
		dataOn(t, c, nd.ID, mnt)
	}
	c.StartAll()
	c.WaitLeader(30 * time.Second)
	cl := newClient(t, c.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	acked, err := putAll(ctx, cl, "before", 20)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := cl.Acquire(ctx, "job", client.WithOwner("worker"), client.WithTTL(time.Hour), client.WithoutAutoRenew())
	if err != nil {
		t.Fatal(err)
	}

	filler := fill(t, mnt, 4<<20)
	start := time.Now()
	_, err = cl.Put(ctx, "during", []byte("x"))
	took := time.Since(start)
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted || !errors.Is(err, client.ErrDiskFull) || !strings.Contains(err.Error(), "disk full on node") {
		t.Fatalf("put with the disks full: %v after %v; want ResourceExhausted (ErrDiskFull) saying which node's disk is full", err, took)
	}
	t.Logf("put with the disks full (%v): %v", took.Round(time.Millisecond), err)
	leader := c.WaitLeader(30 * time.Second)
	follower := newClient(t, othersThan(c, leader)[:1]...)
	if _, err := follower.Put(ctx, "during", []byte("x")); !strings.Contains(err.Error(), "disk full on node") {
		t.Fatalf("put through a follower with the disks full: %v; want the leader's disk-full refusal", err)
	}
	out, errOut, code := dlockCmd(t, "", "kv", "put", "during", "x", "--endpoints", strings.Join(c.Endpoints(), ","))
	if code == 0 || !strings.Contains(errOut, "disk full on node") {
		t.Fatalf("dlock kv put with the disks full: exit %d, %s%s; want a failure saying the disk is full", code, out, errOut)
	}
	t.Logf("dlock kv put with the disks full: exit %d: %s", code, strings.TrimSpace(errOut))
	checkKeys(t, ctx, cl, acked) // reads need no disk
	if info, err := cl.Query(ctx, "job"); err != nil || info.Owner != "worker" || info.Token != lock.Token() {
		t.Errorf("query job with the disks full: %+v, %v; want owner worker, token %d", info, err, lock.Token())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	more, err := putAll(ctx, cl, "after", 20)
	if err != nil {
		t.Fatalf("writes after space was freed: %v", err)
	}
	t.Logf("writes succeed again %v after the filler was removed", time.Since(start).Round(time.Millisecond))
	checkKeys(t, ctx, cl, append(acked, more...))
	for _, nd := range c.Nodes {
		if !c.Running(nd.ID) {
			t.Errorf("node %d is not running", nd.ID)
		}
	}
}

// When only the leader's disk fills up, it hands leadership to a node with
// room, so the cluster takes writes again without an operator; the full
// node follows, and catches up once space is freed. Nothing acknowledged is
// lost.
func TestDiskFullLeaderHandsOver(t *testing.T) {
	var mnts []string
	for range 3 {
		mnts = append(mnts, mountTmpfs(t, 48<<20)) // a small disk each
	}
	c := testcluster.Prepare(t, 3)
	for _, nd := range c.Nodes {
		dataOn(t, c, nd.ID, mnts[nd.ID-1])
	}
	c.StartAll()
	full := c.WaitLeader(30 * time.Second)
	cl := newClient(t, c.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	acked, err := putAll(ctx, cl, "before", 20)
	if err != nil {
		t.Fatal(err)
	}

	filler := fill(t, mnts[full-1], 4<<20)
	start := time.Now()
	var refusals int
	for {
		more, err := putAll(ctx, cl, fmt.Sprintf("during-%d", refusals), 1)
		acked = append(acked, more...)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "disk full on node") || ctx.Err() != nil {
			t.Fatalf("put with the leader's disk full: %v; want success or a disk-full refusal", err)
		}
		refusals++
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	leader := c.WaitLeader(30 * time.Second)
	if leader == full {
		t.Fatalf("node %d still leads with its disk full", full)
	}
	t.Logf("node %d's disk filled; %d writes refused, then node %d led and took writes, %v later",
		full, refusals, leader, time.Since(start).Round(time.Millisecond))
	more, err := putAll(ctx, cl, "after", 20)
	if err != nil {
		t.Fatalf("writes with node %d leading: %v", leader, err)
	}
	acked = append(acked, more...)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.WaitCaughtUp(full, 30*time.Second)
	checkKeys(t, ctx, newClient(t, c.Nodes[full-1].ClientAddr), acked)
	if !c.Running(full) {
		t.Errorf("node %d is not running", full)
	}
}

// A node that finds its data damaged refuses to start, exits non-zero and
// says which file is damaged and what to do, instead of panicking.
func TestCorruptDataRefusesToStart(t *testing.T) {
	// A node with a snapshot (seeded by restore) and log entries after it.
	src := testcluster.Start(t, 1)
	src.WaitLeader(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := newClient(t, src.Endpoints()...)
	if _, err := putAll(ctx, cl, "k", 30); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.snap")
	if _, _, code := dlockCmd(t, "", "snapshot", "save", backup, "--endpoints", src.Nodes[0].ClientAddr); code != 0 {
		t.Fatalf("dlock snapshot save: exit %d", code)
	}
	src.KillAll()
	c := testcluster.Prepare(t, 1)
	if out, errOut, code := dlockCmd(t, c.Nodes[0].Dir, "snapshot", "restore", backup, "--config", "config.yaml"); code != 0 {
		t.Fatalf("dlock snapshot restore: exit %d: %s%s", code, out, errOut)
	}
	c.StartAll()
	c.WaitLeader(30 * time.Second)
	if _, err := putAll(ctx, newClient(t, c.Endpoints()...), "later", 10); err != nil {
		t.Fatal(err)
	}
	c.Stop(1)
	snaps, err := filepath.Glob(filepath.Join(c.DataDir(1), "snapshots", "*", "state.bin"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots of node 1: %v, %v; want at least one", snaps, err)
	}
	snap := strings.TrimPrefix(snaps[0], c.Nodes[0].Dir+"/")
	seg, segSize := walSegment(t, c.Nodes[0].Dir)
	rows := []struct {
		name   string
		damage func(t *testing.T, dir string)
		file   string // named in the error
		want   string
	}{
		{"raft stable store overwritten with garbage", garbage("var/persistence.db"), "var/persistence.db", "corrupt data in raft stable store"},
		{"raft stable store pages overwritten with garbage", garbageAt("var/persistence.db", 2<<12, 4<<12), "var/persistence.db", "corrupt data in raft stable store"},
		{"raft stable store truncated", truncateTo("var/persistence.db", 16<<10), "var/persistence.db", "truncated"},
		{"raft log segment overwritten in the middle", garbageAt(seg, segSize/2, 64), seg, "fails its checksum"},
		{"raft log segment header overwritten", garbageAt(seg, 0, 16), seg, "not a dlock log segment"},
		{"raft log segment cut inside an older record", truncateTo(seg, segSize/2), seg, "corrupt data in raft log"},
		{"snapshot truncated", truncateTo(snap, 100), snap, "truncated"},
		{"snapshot checksum mismatch", flip(snap), snap, "checksum mismatch"},
		{"snapshot meta garbage", garbage(filepath.Join(filepath.Dir(snap), "meta.json")), "meta.json", "does not decode"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			dir := copyTree(t, c.Nodes[0].Dir)
			r.damage(t, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, testcluster.Binary(t), "serve", "--config", "config.yaml")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || ctx.Err() != nil {
				t.Fatalf("dlock serve on damaged data: %v; want it to exit non-zero at once", err)
			}
			text := string(out)
			for _, want := range []string{r.want, r.file, "dlock snapshot restore", "move this node's data away"} {
				if !strings.Contains(text, want) {
					t.Errorf("dlock serve output lacks %q:\n%s", want, lastLines(text, 12))
				}
			}
			if strings.Contains(text, "panic") || strings.Contains(text, "goroutine ") {
				t.Errorf("dlock serve panicked:\n%s", lastLines(text, 30))
			}
			t.Logf("exit %d:\n%s", exit.ExitCode(), lastLines(text, 9))
		})
	}
	t.Run("undamaged", func(t *testing.T) {
		// The same copy, undamaged, starts and serves: the check passes healthy data.
		c.Nodes[0].Dir = copyTree(t, c.Nodes[0].Dir)
		c.Restart(1)
		c.WaitLeader(30 * time.Second)
	})
}

// walSegment returns the newest segment of the Raft log of the node whose
// directory is dir, relative to dir, and its size.
func walSegment(t *testing.T, dir string) (string, int64) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "var", "persistence.db.wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("raft log segments in %s: %v, %v; want at least one", dir, segs, err)
	}
	info, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(segs[len(segs)-1], dir+"/"), info.Size()
}

func garbage(rel string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		path := filepath.Join(dir, rel)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, info.Size())
		_, _ = rand.Read(b)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// garbageAt overwrites n bytes of rel at off with random bytes.
func garbageAt(rel string, off, n int64) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		f, err := os.OpenFile(filepath.Join(dir, rel), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, n)
		_, _ = rand.Read(b)
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}

func truncateTo(rel string, size int64) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		path := filepath.Join(dir, rel)
		if info, err := os.Stat(path); err != nil || info.Size() <= size {
			t.Fatalf("%s: %v, %v; want a file larger than %d bytes to truncate", path, info, err, size)
		}
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
	}
}

func flip(rel string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		path := filepath.Join(dir, rel)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, flipByte(b, len(b)/2), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// copyTree copies the directory tree at src (regular files and
// directories) into a new temporary directory and returns it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

// The advice a damaged node prints works: a follower whose Raft log is
// damaged refuses to start; with its data moved away it starts empty,
// rejoins, and copies the whole state, writes made while it was down
// included, from the leader.
func TestCorruptFollowerRejoinsWithDataMovedAway(t *testing.T) {
	c := testcluster.Start(t, 3)
	leader := c.WaitLeader(30 * time.Second)
	f := leader%3 + 1
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := newClient(t, c.Endpoints()...)
	before, err := putAll(ctx, cl, "before", 20)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop(f)
	during, err := putAll(ctx, cl, "during", 20)
	if err != nil {
		t.Fatal(err)
	}
	seg, size := walSegment(t, c.Nodes[f-1].Dir)
	garbageAt(seg, size/2, 64)(t, c.Nodes[f-1].Dir)

	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	cmd := exec.CommandContext(sctx, testcluster.Binary(t), "serve", "--config", "config.yaml")
	cmd.Dir = c.Nodes[f-1].Dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || sctx.Err() != nil || !strings.Contains(string(out), "corrupt data in raft log") {
		t.Fatalf("node %d on a damaged log: %v\n%s\nwant it to refuse to start, naming the damaged log", f, err, lastLines(string(out), 12))
	}

	if err := os.Rename(c.DataDir(f), c.DataDir(f)+".damaged"); err != nil {
		t.Fatal(err)
	}
	c.Restart(f)
	c.WaitCaughtUp(f, 30*time.Second)
	own := newClient(t, c.Nodes[f-1].ClientAddr)
	for _, key := range append(before, during...) {
		if v, err := own.Get(ctx, key, client.Stale()); err != nil || string(v) != key {
			t.Errorf("node %d's own replica: get %s = %q, %v; want %q", f, key, v, err, key)
		}
	}
}
