package cluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/bench/cluster"
	"github.com/dlock-raft/dlock/bench/etcd"
	"github.com/dlock-raft/dlock/bench/zookeeper"
	"github.com/dlock-raft/dlock/internal/loadgen"
)

// integrationEnv, set to 1, runs the tests below, which start real dlock, etcd and ZooKeeper clusters
// (bench/install-peers.sh installs the servers). On a machine without Debian's etcd-server and
// zookeeper packages they then fail, naming the missing package, rather than skip. An environment
// variable rather than a flag, so that CI runs the whole module in one `go test ./...`.
const integrationEnv = "DLOCK_BENCH_INTEGRATION"

func needIntegration(t *testing.T) {
	t.Helper()
	if os.Getenv(integrationEnv) != "1" {
		t.Skip("starts real clusters: run with " + integrationEnv + "=1")
	}
}

// start starts one kind of cluster and stops it when the test ends.
func start(t *testing.T, kind string) cluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var c cluster.Cluster
	var err error
	switch kind {
	case "etcd":
		c, err = cluster.StartEtcd(ctx, cluster.EtcdConfig{})
	case "zookeeper":
		c, err = cluster.StartZookeeper(ctx, cluster.ZookeeperConfig{})
	case "dlock":
		c, err = cluster.StartDlock(ctx, cluster.DlockConfig{Binary: dlockBinary(t)})
	}
	if err != nil {
		t.Fatalf("start %s: %v", kind, err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop %s: %v", kind, err)
		}
	})
	return c
}

func dlockBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dlock")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dlock")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dlock: %v\n%s", err, out)
	}
	return bin
}

// TestFailover proves each launcher finds its leader, that killing it leaves a cluster that elects a
// new one, and that Stop leaves no member running.
func TestFailover(t *testing.T) {
	needIntegration(t)
	for _, kind := range []string{"dlock", "etcd", "zookeeper"} {
		t.Run(kind, func(t *testing.T) {
			c := start(t, kind)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			old, err := c.LeaderPID(ctx)
			if err != nil {
				t.Fatalf("leader: %v", err)
			}
			if err := c.Kill(old); err != nil {
				t.Fatalf("kill leader %d: %v", old, err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				pid, err := c.LeaderPID(ctx)
				if err == nil && pid != old {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no new leader 30s after killing %d: got %d, %v", old, pid, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err := c.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			for _, pid := range c.PIDs() {
				if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
					t.Errorf("pid %d still exists after Stop", pid)
				}
			}
		})
	}
}

// TestSessions drives every Session call of the etcd and ZooKeeper systems against a real cluster:
// a lock taken, queried, released and taken by another session, and a key written and read.
func TestSessions(t *testing.T) {
	needIntegration(t)
	for _, kind := range []string{"etcd", "zookeeper"} {
		t.Run(kind, func(t *testing.T) {
			c := start(t, kind)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var sys loadgen.System
			if kind == "etcd" {
				sys = etcd.New(c.Endpoints())
			} else {
				z, err := zookeeper.New(ctx, c.Endpoints())
				if err != nil {
					t.Fatalf("zookeeper system: %v", err)
				}
				sys = z
			}
			a, err := sys.Session(ctx, loadgen.SessionConfig{ID: 0, TTL: 5 * time.Second})
			if err != nil {
				t.Fatalf("session a: %v", err)
			}
			defer a.Close()
			b, err := sys.Session(ctx, loadgen.SessionConfig{ID: 1, TTL: 5 * time.Second})
			if err != nil {
				t.Fatalf("session b: %v", err)
			}
			defer b.Close()
			const lock = "bench/test/shared"
			if err := a.Query(ctx, lock); err != nil {
				t.Fatalf("query a free lock: %v, want nil", err)
			}
			if err := a.Acquire(ctx, lock); err != nil {
				t.Fatalf("a acquires: %v", err)
			}
			// b queues behind a until its context ends: the lock is held.
			short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
			err = b.Acquire(short, lock)
			cancelShort()
			if err == nil {
				t.Fatalf("b acquired a lock a holds")
			}
			if err := a.Query(ctx, lock); err != nil {
				t.Fatalf("query a held lock: %v", err)
			}
			if err := a.Release(ctx, lock); err != nil {
				t.Fatalf("a releases: %v", err)
			}
			if err := a.Get(ctx, "bench/test/missing"); err != nil {
				t.Fatalf("get a missing key: %v, want nil", err)
			}
			if err := a.Put(ctx, "bench/test/k", []byte("v1")); err != nil {
				t.Fatalf("put: %v", err)
			}
			if err := a.Put(ctx, "bench/test/k", []byte("v2")); err != nil {
				t.Fatalf("put again: %v", err)
			}
			if err := a.Get(ctx, "bench/test/k"); err != nil {
				t.Fatalf("get: %v", err)
			}
			if err := a.Acquire(ctx, lock); err != nil {
				t.Fatalf("a acquires again after release: %v", err)
			}
			if err := a.Release(ctx, lock); err != nil {
				t.Fatalf("a releases again: %v", err)
			}
		})
	}
}
