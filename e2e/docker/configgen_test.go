package docker

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
)

// The files `dlock config gen` writes for machines work as written: each node started from its own
// directory with `docker compose up -d` (here three "machines" sharing the host's loopback) joins one
// cluster, which grants locks, keeps data and elects a new leader when the old one is killed.
func TestConfigGenMachines(t *testing.T) {
	compose := requireDocker(t)
	image, bin := buildImage(t)
	ports := freePorts(t, 6)
	out := t.TempDir()
	args := []string{"config", "gen", "--out", out, "--image", image}
	endpoints := map[int]string{}
	for i := 1; i <= 3; i++ {
		peer, cli := addr(ports[2*i-2]), addr(ports[2*i-1])
		args = append(args, "--node", fmt.Sprintf("%d=%s,%s", i, peer, cli))
		endpoints[i] = cli
	}
	text, err := run(time.Minute, nil, bin, args...)
	if err != nil {
		t.Fatalf("dlock config gen: %v", err)
	}
	t.Logf("dlock %v:\n%s", args, text)

	name := "dlocke2egen" + randomHex(4)
	nodes := map[int]*project{}
	for i := 1; i <= 3; i++ {
		p := &project{t: t, compose: compose, name: name + "n" + strconv.Itoa(i),
			file: filepath.Join(out, fmt.Sprintf("node%d", i), "docker-compose.yaml")}
		if err := p.up(); err != nil {
			t.Fatalf("start node %d from its generated compose file: %v", i, err)
		}
		nodes[i] = p
	}
	leader := waitLeader(t, endpoints)
	t.Logf("cluster serving, leader node %d", leader)

	cl, err := client.New(values(endpoints))
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := cl.Acquire(ctx, "generated", client.WithTTL(10*time.Second))
	if err != nil {
		t.Fatalf("Acquire = %v, want a hold", err)
	}
	if _, err := cl.Put(ctx, "generated/key", []byte("kept")); err != nil {
		t.Fatalf("Put = %v, want nil", err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatalf("Release = %v, want nil", err)
	}

	docker(t, "kill", nodes[leader].container("dlock"))
	waitLeader(t, without(endpoints, leader))
	t.Logf("killed node %d; a new leader serves", leader)
	second, err := cl.Acquire(ctx, "generated", client.WithTTL(10*time.Second))
	if err != nil {
		t.Fatalf("Acquire after the leader was killed = %v, want a hold", err)
	}
	defer second.Release(ctx)
	if second.Token() <= first.Token() {
		t.Errorf("token after failover = %d, want above %d", second.Token(), first.Token())
	}
	if v, err := cl.Get(ctx, "generated/key"); err != nil || string(v) != "kept" {
		t.Errorf("Get after failover = %q, %v; want \"kept\"", v, err)
	}
}
