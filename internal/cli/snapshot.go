package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/node"
)

// snapshotCommand is the snapshot group: save a live cluster's state to a
// file, restore a new cluster's data from one.
func snapshotCommand() *cobra.Command {
	f := &common{}
	cmd := group("snapshot", "Back up and restore the cluster's state", f)
	cmd.AddCommand(snapshotSave(f), snapshotRestore(f))
	return cmd
}

func snapshotSave(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Write a consistent backup of the whole cluster state to FILE",
		Long: `Write a consistent backup of the whole cluster state (locks, queues, leases, the
fencing counter, keys, the deduplication table) to FILE: every write acknowledged
before the command started is in it. Any node serves it. FILE appears complete or
not at all: the backup goes to a temporary file beside it, is checked, synced and
renamed. --timeout bounds the whole transfer; raise it for a large state.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				index, size, err := saveSnapshotFile(ctx, c, a[0])
				if err != nil {
					return err
				}
				return out.snapshotSaved(a[0], index, size)
			})
		},
	}
}

// saveSnapshotFile writes the backup to a temporary file in path's
// directory, syncs it and renames it to path, then syncs the directory.
func saveSnapshotFile(ctx context.Context, c *client.Client, path string) (index uint64, size int64, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return 0, 0, fmt.Errorf("dlock: snapshot save: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	cw := &countWriter{w: tmp}
	bw := bufio.NewWriterSize(cw, 256<<10)
	if index, err = c.SaveSnapshot(ctx, bw); err != nil {
		return 0, 0, err
	}
	if err = bw.Flush(); err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("dlock: snapshot save %q: %w", path, err)
	}
	return index, cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func snapshotRestore(f *common) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "restore FILE --config CONFIG",
		Short: "Seed a new cluster node's data from a backup, before its first start",
		Long: `Seed the data of one node of a NEW cluster from a backup made by "dlock snapshot
save". Run it once on every node of the new cluster, each with its own config (the
one "dlock serve" will use, from the directory it will run in, since relative paths
are taken from there), before starting any of them. Each node then starts from the
backup's state, with the config's members as the cluster, instead of empty.

It refuses a node that already has Raft state, and a backup that is truncated,
damaged or not a dlock snapshot; either way it writes nothing. It does not contact
any cluster: --endpoints is not used.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if configPath == "" {
				return UsageError(errors.New("--config is required: the config file of the node to restore"))
			}
			if f.output != "text" && f.output != "json" {
				return UsageError(fmt.Errorf("--output %q: want text or json", f.output))
			}
			cfg, err := config.Load(configPath)
			if err != nil {
				return UsageError(err)
			}
			cmd.SilenceUsage = true
			file, err := os.Open(a[0])
			if err != nil {
				return fmt.Errorf("dlock: snapshot restore: %w", err)
			}
			defer file.Close()
			res, err := node.RestoreSnapshot(cfg, bufio.NewReaderSize(file, 256<<10))
			if err != nil {
				return fmt.Errorf("%s: %w", a[0], err)
			}
			out := printer{w: cmd.OutOrStdout(), json: f.output == "json"}
			return out.snapshotRestored(a[0], configPath, cfg.ID.SelfID, res)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file of the node to restore (as for dlock serve)")
	return cmd
}

func (p printer) snapshotSaved(file string, index uint64, size int64) error {
	v := struct {
		File  string `json:"file"`
		Index uint64 `json:"index"`
		Bytes int64  `json:"bytes"`
	}{file, index, size}
	return p.emit(v, func(w io.Writer) {
		fmt.Fprintf(w, "saved snapshot at index %d (%d bytes) to %s\n", index, size, file)
	})
}

func (p printer) snapshotRestored(file, configPath string, id uint32, r node.Restored) error {
	type memberJSON struct {
		ID          uint32 `json:"id"`
		PeerAddress string `json:"peer_address"`
	}
	v := struct {
		File     string       `json:"file"`
		Node     uint32       `json:"node"`
		Index    uint64       `json:"index"`
		Bytes    int64        `json:"bytes"`
		Snapshot string       `json:"snapshot"`
		Members  []memberJSON `json:"members"`
	}{File: file, Node: id, Index: r.Index, Bytes: r.Bytes, Snapshot: r.Snapshot}
	var members []string
	for _, m := range r.Members {
		v.Members = append(v.Members, memberJSON{m.ID, m.PeerAddress})
		members = append(members, fmt.Sprintf("%d=%s", m.ID, m.PeerAddress))
	}
	return p.emit(v, func(w io.Writer) {
		fmt.Fprintf(w, "restored snapshot at index %d (%d bytes) from %s for node %d into %s\n", r.Index, r.Bytes, file, id, r.Snapshot)
		fmt.Fprintf(w, "members: %s\n", strings.Join(members, " "))
		fmt.Fprintf(w, "Restore every node of the new cluster, then start each: dlock serve --config %s\n", configPath)
	})
}
