package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdBinary is where Debian's etcd-server package installs the server.
const EtcdBinary = "/usr/bin/etcd"

// EtcdConfig places an etcd cluster.
type EtcdConfig struct {
	// Binary is the etcd server; empty means EtcdBinary.
	Binary string
	// DataParent is where the cluster's data directory is made; empty means the system's temp dir.
	DataParent string
}

// Etcd is a running three-member etcd cluster.
type Etcd struct {
	members
	clientURLs []string
}

// EtcdArgs are the command-line arguments of member i (0-based) of a static cluster whose members'
// client and peer ports are given. Everything else is etcd's default: in particular every write is
// fsync'd (--unsafe-no-fsync is off), heartbeats every 100ms and elections after 1s.
func EtcdArgs(i int, dataDir string, clientPorts, peerPorts []int) []string {
	var initial []string
	for j, p := range peerPorts {
		initial = append(initial, fmt.Sprintf("n%d=http://127.0.0.1:%d", j+1, p))
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", clientPorts[i])
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPorts[i])
	return []string{
		"--name", fmt.Sprintf("n%d", i+1),
		"--data-dir", dataDir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", strings.Join(initial, ","),
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "dlock-bench",
		"--logger", "zap", "--log-outputs", "stderr",
	}
}

// StartEtcd starts three etcd members and waits, within ctx, until the cluster has a leader.
func StartEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	bin := cfg.Binary
	if bin == "" {
		bin = EtcdBinary
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("etcd server: %w (install Debian's etcd-server package)", err)
	}
	ports, err := FreePorts(6)
	if err != nil {
		return nil, err
	}
	clientPorts, peerPorts := ports[:3], ports[3:]
	e := &Etcd{}
	for i := range 3 {
		e.clientURLs = append(e.clientURLs, fmt.Sprintf("127.0.0.1:%d", clientPorts[i]))
	}
	err = e.start(ctx, cfg.DataParent, "etcd", 100*time.Millisecond, func(i int, _, md string) ([]string, error) {
		return append([]string{bin}, EtcdArgs(i, filepath.Join(md, "data"), clientPorts, peerPorts)...), nil
	}, func(ctx context.Context) error {
		_, err := e.LeaderPID(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Name implements Cluster.
func (e *Etcd) Name() string { return "etcd" }

// Endpoints implements Cluster.
func (e *Etcd) Endpoints() []string { return append([]string(nil), e.clientURLs...) }

// LeaderPID implements Cluster: it asks each running member for its status and returns the pid of the
// member whose own id is the leader it reports.
func (e *Etcd) LeaderPID(ctx context.Context) (int, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: e.clientURLs, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return 0, fmt.Errorf("etcd: dial: %w", err)
	}
	defer c.Close()
	var errs []error
	for _, i := range e.running() {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.Status(sctx, e.clientURLs[i])
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Leader != 0 && st.Header.GetMemberId() == st.Leader {
			return e.procs[i].pid(), nil
		}
	}
	return 0, fmt.Errorf("etcd: no running member leads: %w", errors.Join(errs...))
}
