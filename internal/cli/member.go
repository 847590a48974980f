package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlock-raft/dlock/client"
)

// addMemberCommands adds the membership commands to the cluster group.
func addMemberCommands(cluster *cobra.Command, f *common) {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List, add and remove the cluster's members",
		Args:  args(0, 0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(memberList(f), memberAdd(f), memberRemove(f))
	cluster.AddCommand(cmd)
}

func memberList(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the members as the answering node sees them",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				s, err := c.Status(ctx)
				if err != nil {
					return err
				}
				return out.members(s.Members)
			})
		},
	}
}

func memberAdd(f *common) *cobra.Command {
	var id uint32
	var peer, clientAddr string
	var nonvoter bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "add --id ID --peer-address HOST:PORT --client-address HOST:PORT",
		Short: "Add a running node (started with --join) as a non-voter, then, once caught up, as a voter",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case id == 0:
				return UsageError(errors.New("--id: want the new node's id, 1..4294967295"))
			case peer == "" || clientAddr == "":
				return UsageError(errors.New("--peer-address and --client-address: want host:port each"))
			case wait < 0:
				return UsageError(fmt.Errorf("--wait %s: want 0 or more", wait))
			}
			var opts []client.MemberOption
			if nonvoter {
				opts = append(opts, client.AsNonvoter())
			}
			return f.run(cmd, wait, func(ctx context.Context, c *client.Client, out printer) error {
				ms, err := c.AddMember(ctx, id, peer, clientAddr, opts...)
				if errors.Is(err, client.ErrNotCaughtUp) {
					// Exit status 5: no complete answer before the timeout.
					return fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
				}
				if err != nil {
					return err
				}
				return out.memberChange("added", id, ms)
			})
		},
	}
	cmd.Flags().Uint32Var(&id, "id", 0, "the new node's id (its id.self_id)")
	cmd.Flags().StringVar(&peer, "peer-address", "", "where the other nodes reach the new node's Raft port (host:port)")
	cmd.Flags().StringVar(&clientAddr, "client-address", "", "where clients reach the new node (host:port)")
	cmd.Flags().BoolVar(&nonvoter, "nonvoter", false, "keep the node a non-voter: it replicates the log and serves clients, but does not vote")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long the new node may take to catch up with the log, on top of --timeout")
	return cmd
}

func memberRemove(f *common) *cobra.Command {
	var id uint32
	cmd := &cobra.Command{
		Use:   "remove --id ID",
		Short: "Remove a member (the leader hands leadership over first); the removed node stops",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == 0 {
				return UsageError(errors.New("--id: want the id of the member to remove, 1..4294967295"))
			}
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				ms, err := c.RemoveMember(ctx, id)
				if err != nil {
					return err
				}
				return out.memberChange("removed", id, ms)
			})
		},
	}
	cmd.Flags().Uint32Var(&id, "id", 0, "the id of the member to remove")
	return cmd
}

func toMemberJSON(ms []client.Member) []memberJSON {
	js := make([]memberJSON, 0, len(ms))
	for _, m := range ms {
		js = append(js, memberJSON{m.ID, m.PeerAddress, m.ClientAddress, m.Voter, m.Leader})
	}
	return js
}

// memberTable writes the members as the status command does.
func memberTable(w io.Writer, ms []client.Member) {
	fmt.Fprintln(w, "ID\tSUFFRAGE\tLEADER\tPEER ADDRESS\tCLIENT ADDRESS")
	for _, m := range ms {
		suffrage := "voter"
		if !m.Voter {
			suffrage = "nonvoter"
		}
		client := m.ClientAddress
		if client == "" {
			client = "-"
		}
		fmt.Fprintf(w, "%d\t%s\t%v\t%s\t%s\n", m.ID, suffrage, m.Leader, m.PeerAddress, client)
	}
}

func (p printer) members(ms []client.Member) error {
	return p.emit(toMemberJSON(ms), func(w io.Writer) { memberTable(w, ms) })
}

// memberChange prints what a change did and the members after it.
func (p printer) memberChange(verb string, id uint32, ms []client.Member) error {
	v := struct {
		Change  string       `json:"change"`
		ID      uint32       `json:"id"`
		Members []memberJSON `json:"members"`
	}{verb, id, toMemberJSON(ms)}
	return p.emit(v, func(w io.Writer) {
		what := ""
		for _, m := range ms {
			if m.ID == id {
				what = " as a voter"
				if !m.Voter {
					what = " as a non-voter"
				}
			}
		}
		fmt.Fprintf(w, "%s node %d%s\n\n", verb, id, what)
		memberTable(w, ms)
	})
}
