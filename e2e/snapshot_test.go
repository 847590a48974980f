package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// keyWriter puts keys w/0000, w/0001, ... until stopped, and remembers
// which the cluster acknowledged.
type keyWriter struct {
	mu    sync.Mutex
	acked []string
	stop  chan struct{}
	done  chan struct{}
}

func startKeyWriter(c *client.Client) *keyWriter {
	w := &keyWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			key := fmt.Sprintf("w/%04d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := c.Put(ctx, key, []byte(key))
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acked = append(w.acked, key)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *keyWriter) ackedSoFar() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}

func (w *keyWriter) halt() {
	close(w.stop)
	<-w.done
}

// heldLock is what a backup must keep of a held lock.
type heldLock struct {
	owner string
	token uint64
}

// A backup taken with `dlock snapshot save` from a live 3-node cluster,
// through a follower and while a client keeps writing, seeds a new 3-node
// cluster (new directories and ports) with `dlock snapshot restore` on each
// node: held locks keep their owner and token, a queue its waiters in
// order, every key acknowledged before the save is there, and the fencing
// counter goes on from where it was. A node with data, and a damaged
// backup, are refused, and nothing is written.
func TestSnapshotSaveRestore(t *testing.T) {
	src := testcluster.Start(t, 3)
	leader := src.WaitLeader(30 * time.Second)
	c := newClient(t, src.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Held locks, a fencing counter moved on, a queue of two, some keys.
	held := map[string]heldLock{}
	for _, name := range []string{"held-a", "held-b", "queued"} {
		l, err := c.Acquire(ctx, name, client.WithOwner("owner-"+name), client.WithTTL(time.Hour), client.WithoutAutoRenew())
		if err != nil {
			t.Fatalf("acquire %s: %v", name, err)
		}
		held[name] = heldLock{l.Owner(), l.Token()}
	}
	var tokenMax uint64
	for i := 0; i < 20; i++ {
		l, err := c.Acquire(ctx, "churn", client.WithOwner("churner"), client.WithTTL(time.Minute), client.WithoutAutoRenew())
		if err != nil {
			t.Fatalf("acquire churn #%d: %v", i, err)
		}
		tokenMax = max(tokenMax, l.Token())
		if err := l.Release(ctx); err != nil {
			t.Fatalf("release churn #%d: %v", i, err)
		}
	}
	waitCtx, stopWaiting := context.WithCancel(ctx)
	var waiters sync.WaitGroup
	for i, owner := range []string{"waiter-1", "waiter-2"} {
		waiters.Add(1)
		go func() {
			defer waiters.Done()
			_, _ = c.Acquire(waitCtx, "queued", client.WithOwner(owner), client.WithWait(10*time.Minute), client.WithoutAutoRenew())
		}()
		waitQueued(t, ctx, c, "queued", i+1)
	}
	for i := 0; i < 50; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("k/%02d", i), []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("put k/%02d: %v", i, err)
		}
	}

	// Save through a follower while a client keeps writing.
	writer := startKeyWriter(c)
	waitAcked(t, writer, 20)
	before := writer.ackedSoFar()
	follower := othersThan(src, leader)[0]
	file := filepath.Join(t.TempDir(), "backup.snap")
	start := time.Now()
	out, errOut, code := dlockCmd(t, "", "snapshot", "save", file, "--endpoints", follower, "--timeout", "30s")
	if code != 0 {
		t.Fatalf("dlock snapshot save: exit %d, %s%s", code, out, errOut)
	}
	t.Logf("dlock snapshot save (%v): %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	m := regexp.MustCompile(`^saved snapshot at index (\d+) \((\d+) bytes\) to `).FindStringSubmatch(out)
	info, err := os.Stat(file)
	if m == nil || err != nil || strconv.FormatInt(info.Size(), 10) != m[2] {
		t.Fatalf("dlock snapshot save printed %q; file %v, %v: want the index and the file's size", out, info, err)
	}
	writer.halt()
	t.Logf("the writer had %d keys acknowledged when the save began, %d when it stopped", len(before), len(writer.ackedSoFar()))
	stopWaiting()
	waiters.Wait()
	src.KillAll()

	dst := testcluster.Prepare(t, 3)
	for _, nd := range dst.Nodes {
		out, errOut, code := dlockCmd(t, nd.Dir, "snapshot", "restore", file, "--config", "config.yaml")
		want := fmt.Sprintf("restored snapshot at index %s (%s bytes)", m[1], m[2])
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("node %d: dlock snapshot restore: exit %d, %s%s; want exit 0 and %q", nd.ID, code, out, errOut, want)
		}
		if nd.ID == 1 {
			t.Logf("dlock snapshot restore on node 1:\n%s", out)
		}
	}
	_, errOut, code = dlockCmd(t, dst.Nodes[0].Dir, "snapshot", "restore", file, "--config", "config.yaml")
	if code == 0 || !strings.Contains(errOut, "already has Raft state") {
		t.Fatalf("a second restore into node 1: exit %d, %q; want a refusal saying it already has Raft state", code, errOut)
	}
	t.Logf("a second restore: %s", strings.TrimSpace(errOut))

	dst.StartAll()
	dst.WaitLeader(30 * time.Second)
	c2 := newClient(t, dst.Endpoints()...)
	checkRestored(t, ctx, c2, held, before, tokenMax)
}

// checkRestored checks a restored cluster against what the source held.
func checkRestored(t *testing.T, ctx context.Context, c *client.Client, held map[string]heldLock, keys []string, tokenMax uint64) {
	t.Helper()
	for name, h := range held {
		info, err := c.Query(ctx, name)
		if err != nil || info.Owner != h.owner || info.Token != h.token {
			t.Errorf("lock %s: %+v, %v; want owner %s, token %d", name, info, err, h.owner, h.token)
		}
		tokenMax = max(tokenMax, h.token)
	}
	if info, err := c.Query(ctx, "queued"); err != nil || info.Waiters != 2 {
		t.Errorf("lock queued: %+v, %v; want 2 waiters", info, err)
	}
	if err := c.ReleaseOwned(ctx, "queued", held["queued"].owner, held["queued"].token); err != nil {
		t.Fatalf("release queued: %v", err)
	}
	if info, err := c.Query(ctx, "queued"); err != nil || info.Owner != "waiter-1" || info.Token <= tokenMax {
		t.Errorf("lock queued after its release: %+v, %v; want it granted to waiter-1 (the first waiter) with a token above %d", info, err, tokenMax)
	}
	for i := 0; i < 50; i++ {
		key := fmt.Sprintf("k/%02d", i)
		if v, err := c.Get(ctx, key); err != nil || string(v) != strconv.Itoa(i) {
			t.Errorf("get %s: %q, %v; want %q", key, v, err, strconv.Itoa(i))
		}
	}
	for _, key := range keys {
		if v, err := c.Get(ctx, key); err != nil || string(v) != key {
			t.Errorf("get %s (acknowledged before the save): %q, %v", key, v, err)
		}
	}
	l, err := c.Acquire(ctx, "fresh", client.WithOwner("newcomer"), client.WithTTL(time.Minute), client.WithoutAutoRenew())
	if err != nil || l.Token() <= tokenMax {
		t.Fatalf("a new grant after the restore: %v; want a token above %d, the largest before the backup", err, tokenMax)
	}
	t.Logf("restored: %d locks, %d keys acknowledged before the save; a new grant got token %d (largest before: %d)",
		len(held), len(keys), l.Token(), tokenMax)
}

func waitQueued(t *testing.T, ctx context.Context, c *client.Client, name string, n int) {
	t.Helper()
	for {
		info, err := c.Query(ctx, name)
		if err == nil && info.Waiters >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lock %s: %+v, %v; want %d waiters", name, info, err, n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitAcked(t *testing.T, w *keyWriter, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for len(w.ackedSoFar()) < n {
		select {
		case <-deadline:
			t.Fatalf("the writer had %d keys acknowledged after 30s, want %d", len(w.ackedSoFar()), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A damaged backup is refused with an error that says what is wrong, and
// the node's data directory stays empty.
func TestSnapshotRestoreRefusesDamagedBackups(t *testing.T) {
	src := testcluster.Start(t, 1)
	src.WaitLeader(30 * time.Second)
	c := newClient(t, src.Endpoints()...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 20; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("k/%02d", i), bytes.Repeat([]byte{'v'}, 100)); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	var buf bytes.Buffer
	index, err := c.SaveSnapshot(ctx, &buf)
	if err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	good := buf.Bytes()
	t.Logf("client.SaveSnapshot: index %d, %d bytes", index, len(good))
	rows := []struct {
		name string
		give []byte
		want string
	}{
		{"a flipped byte", flipByte(good, len(good)/2), "checksum mismatch"},
		{"a flipped checksum byte", flipByte(good, len(good)-1), "checksum mismatch"},
		{"truncated in the state", good[:len(good)/2], "truncated"},
		{"truncated in the checksum", good[:len(good)-5], "truncated"},
		{"extra bytes", append(append([]byte(nil), good...), 'x'), "unexpected data after the checksum"},
		{"not a snapshot", []byte("id:\n  self_id: 1\n"), "not a dlock snapshot"},
		{"empty", nil, "not a dlock snapshot"},
	}
	dst := testcluster.Prepare(t, 1)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "backup.snap")
			if err := os.WriteFile(file, r.give, 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := dlockCmd(t, dst.Nodes[0].Dir, "snapshot", "restore", file, "--config", "config.yaml")
			if code != 1 || !strings.Contains(errOut, r.want) || !strings.Contains(errOut, "nothing was written") {
				t.Errorf("restore: exit %d, stdout %q, stderr %q; want exit 1 and %q, nothing was written", code, out, errOut, r.want)
			}
			if _, err := os.Stat(dst.DataDir(1)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("data dir %s after a refused restore: %v; want it not to exist", dst.DataDir(1), err)
			}
			t.Logf("%s", strings.TrimSpace(errOut))
		})
	}
}

func flipByte(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0x40
	return out
}
