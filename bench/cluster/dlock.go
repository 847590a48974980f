package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
)

// DlockConfig places a dlock cluster.
type DlockConfig struct {
	// Binary is the dlock command (go build -o X ./cmd/dlock); required.
	Binary string
	// DataParent is where the cluster's data directory is made; empty means the system's temp dir.
	DataParent string
}

// Dlock is a running three-member dlock cluster.
type Dlock struct {
	members
	clientAddrs []string
	ids         []uint32 // member i's Raft id
}

// DlockConfigs renders the config.yaml of each member of a cluster whose peer and client ports are
// given, with its data under dataDirs[i]. Everything but the ids, addresses and data directory is
// dlock's default (config.Default): every Raft entry fsync'd on a majority before it is acknowledged.
func DlockConfigs(dataDirs []string, peerPorts, clientPorts []int) ([][]byte, error) {
	var ms []config.Member
	for i := range peerPorts {
		ms = append(ms, config.Member{
			ID:            uint32(i + 1),
			PeerAddress:   fmt.Sprintf("127.0.0.1:%d", peerPorts[i]),
			ClientAddress: fmt.Sprintf("127.0.0.1:%d", clientPorts[i]),
		})
	}
	var out [][]byte
	for i, m := range ms {
		base := config.Default()
		base.Storage.DataDir = dataDirs[i]
		text, err := base.ForMember(m.ID, ms).Render()
		if err != nil {
			return nil, fmt.Errorf("config of member %d: %w", m.ID, err)
		}
		out = append(out, text)
	}
	return out, nil
}

// StartDlock starts three `dlock serve` processes and waits, within ctx, until every member is ready
// and agrees on the leader.
func StartDlock(ctx context.Context, cfg DlockConfig) (*Dlock, error) {
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("dlock binary: %w (go build -o X ./cmd/dlock)", err)
	}
	ports, err := FreePorts(6)
	if err != nil {
		return nil, err
	}
	peerPorts, clientPorts := ports[:3], ports[3:]
	d := &Dlock{}
	for i := range 3 {
		d.clientAddrs = append(d.clientAddrs, fmt.Sprintf("127.0.0.1:%d", clientPorts[i]))
		d.ids = append(d.ids, uint32(i+1))
	}
	err = d.start(ctx, cfg.DataParent, "dlock", 100*time.Millisecond, func(i int, dir, md string) ([]string, error) {
		var dataDirs []string
		for j := range 3 {
			dataDirs = append(dataDirs, filepath.Join(memberDir(dir, j), "data"))
		}
		cfgs, err := DlockConfigs(dataDirs, peerPorts, clientPorts)
		if err != nil {
			return nil, err
		}
		cfgPath := filepath.Join(md, "config.yaml")
		if err := os.WriteFile(cfgPath, cfgs[i], 0o640); err != nil {
			return nil, fmt.Errorf("write %s: %w", cfgPath, err)
		}
		return []string{cfg.Binary, "serve", "--config", cfgPath}, nil
	}, d.ready)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ready checks that every member is ready and names the same leader.
func (d *Dlock) ready(ctx context.Context) error {
	leaders := map[uint32]bool{}
	for i := range d.procs {
		st, err := d.status(ctx, i)
		if err != nil {
			return err
		}
		if !st.Ready || st.LeaderID == 0 {
			return fmt.Errorf("dlock: member %d not ready (state %s)", d.ids[i], st.State)
		}
		leaders[st.LeaderID] = true
	}
	if len(leaders) != 1 {
		return fmt.Errorf("dlock: members name %d leaders", len(leaders))
	}
	return nil
}

// status asks member i alone for its view.
func (d *Dlock) status(ctx context.Context, i int) (client.Status, error) {
	c, err := client.New([]string{d.clientAddrs[i]}, client.WithCallTimeout(time.Second), client.WithRetryLimit(1))
	if err != nil {
		return client.Status{}, err
	}
	defer c.Close()
	return c.Status(ctx)
}

// Name implements Cluster.
func (d *Dlock) Name() string { return "dlock" }

// Endpoints implements Cluster.
func (d *Dlock) Endpoints() []string { return append([]string(nil), d.clientAddrs...) }

// LeaderPID implements Cluster: it asks each running member for its status and returns the pid of the
// member that reports itself as leader.
func (d *Dlock) LeaderPID(ctx context.Context) (int, error) {
	var errs []error
	for _, i := range d.running() {
		st, err := d.status(ctx, i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.State == "Leader" && st.LeaderID == d.ids[i] {
			return d.procs[i].pid(), nil
		}
	}
	return 0, fmt.Errorf("dlock: no running member leads: %w", errors.Join(errs...))
}
