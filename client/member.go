package client

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// Outcomes of a membership change, besides ErrInvalid (an id of 0, an address that cannot be dialled, an
// id that is a member already with other addresses, an address another member uses, no member with the
// id to remove, a node at the peer address with another id or in a cluster already), ErrLimit (the
// cluster has the most members it may have) and ErrUnavailable. Nothing was changed, except after
// ErrNotCaughtUp.
var (
	// ErrChangeInProgress: the cluster is running another membership change; retry once it has ended.
	ErrChangeInProgress = errors.New("dlock: another membership change is in progress")
	// ErrLastVoter: removing the member would leave the cluster without a voter.
	ErrLastVoter = errors.New("dlock: cannot remove the last voter")
	// ErrMemberUnreachable: the node to add did not answer at its peer address: start it first, with
	// id.join set (or `dlock serve --join`).
	ErrMemberUnreachable = errors.New("dlock: node to add is unreachable")
	// ErrNotCaughtUp: the node was added as a non-voter but had not caught up with the log when the
	// context's deadline came. It stays a non-voter and keeps receiving the log; AddMember again, with the
	// same id and addresses, promotes it once it has caught up.
	ErrNotCaughtUp = errors.New("dlock: new member has not caught up with the log")
)

// memberReasons inverts the membership reasons of api/dlockv1/reasons.go. They are apart from
// reasonErrors because the server's message already starts with the sentinel's (memberStatusError).
var memberReasons = map[string]error{
	dlockv1.ReasonChangeInProgress:  ErrChangeInProgress,
	dlockv1.ReasonLastVoter:         ErrLastVoter,
	dlockv1.ReasonMemberUnreachable: ErrMemberUnreachable,
	dlockv1.ReasonNotCaughtUp:       ErrNotCaughtUp,
}

// MemberOption shapes an AddMember.
type MemberOption func(*memberOptions)

type memberOptions struct{ nonvoter bool }

// AsNonvoter adds the node as a non-voter only: it receives the log and serves clients, but takes no
// part in elections or commits. Adding it again without this option promotes it to a voter.
func AsNonvoter() MemberOption { return func(o *memberOptions) { o.nonvoter = true } }

// AddMember adds node id, reachable by the other nodes at peerAddress and by clients at clientAddress,
// to the cluster, and returns the members after the change. The node must be running, started with
// id.join (`dlock serve --join`) so that it waited instead of bootstrapping a cluster of its own. It is
// added as a non-voter, which receives the log, then, once it has caught up, as a voter (unless
// AsNonvoter). Any endpoint accepts the call and passes it to the leader.
//
// The catch-up counts against ctx: give it a deadline that leaves the node time to receive the log
// (each attempt lasts until the deadline; without one, the call timeout bounds each attempt). Adding a
// member again exactly as it is changes nothing and succeeds, so the retries after ErrUnavailable are
// safe; after a final ErrUnavailable the node may have been added: read Status.
func (c *Client) AddMember(ctx context.Context, id uint32, peerAddress, clientAddress string, opts ...MemberOption) ([]Member, error) {
	var o memberOptions
	for _, opt := range opts {
		opt(&o)
	}
	if id == 0 {
		return nil, invalidf("member id 0 is reserved; use 1..4294967295")
	}
	req := &dlockv1.AddMemberRequest{Id: id, PeerAddress: peerAddress, ClientAddress: clientAddress, Nonvoter: o.nonvoter}
	var resp *dlockv1.AddMemberResponse
	err := c.call(ctx, c.untilDeadline(ctx), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewClusterClient(cc).AddMember(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return nil, memberError(err)
	}
	return members(resp.GetMembers()), nil
}

// RemoveMember removes node id from the cluster and returns the members after the change. Removing the
// leader hands leadership to another voter first. The removed node stops (`dlock serve` exits). Any
// endpoint accepts the call and passes it to the leader. After a final ErrUnavailable the node may have
// been removed: read Status.
func (c *Client) RemoveMember(ctx context.Context, id uint32) ([]Member, error) {
	if id == 0 {
		return nil, invalidf("member id 0 is reserved; use 1..4294967295")
	}
	req := &dlockv1.RemoveMemberRequest{Id: id}
	var resp *dlockv1.RemoveMemberResponse
	err := c.call(ctx, c.untilDeadline(ctx), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewClusterClient(cc).RemoveMember(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return nil, memberError(err)
	}
	return members(resp.GetMembers()), nil
}

// untilDeadline bounds each attempt by what is left of ctx, or by the call timeout if ctx has no
// deadline: a membership change may take longer than a write.
func (c *Client) untilDeadline(ctx context.Context) func() time.Duration {
	return func() time.Duration {
		if dl, ok := ctx.Deadline(); ok {
			return time.Until(dl)
		}
		return c.opts.callTimeout
	}
}

// memberError maps the membership reasons.
func memberError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if kind, ok := memberReasons[reason(st)]; ok {
		return &memberStatusError{statusError{kind: kind, st: st}}
	}
	return err
}

// memberStatusError is a statusError whose server message already starts with the sentinel's.
type memberStatusError struct{ statusError }

func (e *memberStatusError) Error() string {
	if strings.HasPrefix(e.st.Message(), e.kind.Error()) {
		return e.st.Message()
	}
	return e.statusError.Error()
}

func members(ms []*dlockv1.Member) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{
			ID: m.GetId(), PeerAddress: m.GetPeerAddress(), ClientAddress: m.GetClientAddress(),
			Voter: m.GetSuffrage() != "nonvoter", Leader: m.GetLeader(),
		})
	}
	return out
}
