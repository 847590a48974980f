package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/config"
)

func TestParseSrvrMode(t *testing.T) {
	tests := []struct {
		name, give, want string
		wantErr          bool
	}{
		{name: "leader", give: "Zookeeper version: 3.8.0, built on 2022-02-25\nLatency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 1\nOutstanding: 0\nZxid: 0x100000000\nMode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n", want: "leader"},
		{name: "follower", give: "Zookeeper version: 3.8.0\nMode: follower\nNode count: 5\n", want: "follower"},
		{name: "not in a quorum", give: "This ZooKeeper instance is not currently serving requests\n", wantErr: true},
		{name: "srvr not allowed", give: "srvr is not executed because it is not in the whitelist.\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSrvrMode(tt.give)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseSrvrMode = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestZooCfg(t *testing.T) {
	got := ZooCfg("/d/m2/data", 2181, []int{1, 2, 3}, []int{4, 5, 6})
	for _, want := range []string{
		"dataDir=/d/m2/data\n", "clientPort=2181\n", "clientPortAddress=127.0.0.1\n", "forceSync=yes\n",
		"4lw.commands.whitelist=srvr,ruok\n", "admin.enableServer=false\n", "maxSessionTimeout=3600000\n",
		"server.1=127.0.0.1:1:4\n", "server.2=127.0.0.1:2:5\n", "server.3=127.0.0.1:3:6\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("zoo.cfg lacks %q; got:\n%s", want, got)
		}
	}
}

func TestEtcdArgs(t *testing.T) {
	got := strings.Join(EtcdArgs(1, "/d/m2/data", []int{11, 12, 13}, []int{21, 22, 23}), " ")
	for _, want := range []string{
		"--name n2", "--data-dir /d/m2/data",
		"--listen-client-urls http://127.0.0.1:12", "--advertise-client-urls http://127.0.0.1:12",
		"--listen-peer-urls http://127.0.0.1:22", "--initial-advertise-peer-urls http://127.0.0.1:22",
		"--initial-cluster n1=http://127.0.0.1:21,n2=http://127.0.0.1:22,n3=http://127.0.0.1:23",
		"--initial-cluster-state new",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("etcd args lack %q; got %s", want, got)
		}
	}
	if strings.Contains(got, "unsafe-no-fsync") {
		t.Errorf("etcd args turn fsync off: %s", got)
	}
}

// Each member's rendered file loads back as a valid config naming itself and the other two.
func TestDlockConfigs(t *testing.T) {
	files, err := DlockConfigs([]string{"/d/1", "/d/2", "/d/3"}, []int{21, 22, 23}, []int{11, 12, 13})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		cfg, err := config.Parse(f)
		if err != nil {
			t.Fatalf("member %d's file does not load: %v\n%s", i+1, err, f)
		}
		if cfg.ID.SelfID != uint32(i+1) || len(cfg.ID.PeerIDs) != 2 || cfg.Storage.DataDir != []string{"/d/1", "/d/2", "/d/3"}[i] {
			t.Errorf("member %d: got self %d, peers %v, data dir %q", i+1, cfg.ID.SelfID, cfg.ID.PeerIDs, cfg.Storage.DataDir)
		}
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(9)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want 9 distinct ports", ports)
		}
		seen[p] = true
	}
}

// A data directory whose benchmark died without its Stop is removed by the next start; one whose
// owner lives, or that names no owner, is kept.
func TestNewDataDirRemovesOrphans(t *testing.T) {
	parent := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, owner int) string {
		dir := filepath.Join(parent, name)
		if err := os.MkdirAll(filepath.Join(dir, "m1", "data"), 0o750); err != nil {
			t.Fatal(err)
		}
		if owner != 0 {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d\n", owner), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	orphan := mk("dlock-bench-etcd-1", gone.Process.Pid)
	kept := []string{
		mk("dlock-bench-zookeeper-2", os.Getpid()),
		mk("dlock-bench-dlock-3", 0),
		mk("unrelated", gone.Process.Pid),
	}
	dir, err := newDataDir(parent, "dlock")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("%s, owned by exited pid %d: stat error %v, want it removed", orphan, gone.Process.Pid, err)
	}
	for _, d := range kept {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v, want it kept", d, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("new dir's owner: %q, %v; want this process, %d", b, err, os.Getpid())
	}
}

// A cluster whose members never serve fails within ctx, naming the system, and leaves no data
// directory behind.
func TestStartThatNeverServesRemovesItsData(t *testing.T) {
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = StartDlock(ctx, DlockConfig{Binary: bin, DataParent: parent})
	if err == nil || !strings.Contains(err.Error(), "dlock cluster did not come up") {
		t.Fatalf("StartDlock with members that exit at once: %v, want an error saying the cluster did not come up", err)
	}
	left, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%s holds %d entries after the failed start, want none", parent, len(left))
	}
}
