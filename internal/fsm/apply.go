package fsm

import (
	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// Apply applies one log entry and returns one result per command, in order,
// plus the events they caused. Cluster time becomes max(Now(), e.NowNanos);
// every decision uses it. Idle entries are pruned first when PruneInterval
// has passed. A malformed or refused command gets its result and changes
// nothing; Apply never panics on input. A nil entry changes nothing.
//
// Apply is deterministic: replicas that apply the same entries from the same
// state return the same Output and reach the same state.
func (s *State) Apply(e *fsmpb.Entry) Output {
	if e == nil {
		return Output{}
	}
	s.now = max(s.now, e.NowNanos)
	s.wall = e.WallUnixNanos
	s.prune()
	out := Output{Results: make([]*fsmpb.Result, 0, len(e.Commands))}
	for _, c := range e.Commands {
		out.Results = append(out.Results, s.command(c))
	}
	out.Events, s.events = s.events, nil
	return out
}

// ApplyBytes decodes a protobuf Entry and applies it. Data that does not
// decode gets one INVALID result and changes nothing (not even cluster time).
func (s *State) ApplyBytes(data []byte) Output {
	var e fsmpb.Entry
	if err := proto.Unmarshal(data, &e); err != nil {
		// The decoder's error text is deliberately unstable across builds:
		// keep it out of the replicated result.
		return Output{Results: []*fsmpb.Result{invalid("entry does not decode as a protobuf Entry")}}
	}
	return s.Apply(&e)
}

// command applies one command, deduplicating it by (client id, seq) when it
// carries both. Expire and LeaderStart are never deduplicated: they come from
// leaders, and a repeated one is harmless.
func (s *State) command(c *fsmpb.Command) *fsmpb.Result {
	if c == nil || c.Op == nil {
		return invalid("command has no operation")
	}
	if c.Principal != "" {
		if r := s.authorize(c); r != nil {
			return s.deniedOrReplay(c, r)
		}
	}
	if c.ClientId == "" || c.Seq == 0 || !dedupable(c) {
		return s.exec(c)
	}
	if r := checkID("client id", c.ClientId, s.limits.OwnerBytesMax); r != nil {
		return r
	}
	cl := s.clients[c.ClientId]
	cl.acknowledge(min(c.AckedBelow, c.Seq))
	if cl != nil && c.Seq < cl.ackedBelow {
		return refuse(fsmpb.Code_STALE_REQUEST,
			"seq %d of client %q is below what the client acknowledged (%d)", c.Seq, c.ClientId, cl.ackedBelow)
	}
	if r := cl.lookup(c.Seq); r != nil {
		return s.replay(cl, c, r)
	}
	if cl.forgot(c.Seq) {
		return refuse(fsmpb.Code_STALE_REQUEST,
			"seq %d of client %q is older than the results it remembers", c.Seq, c.ClientId)
	}
	r := s.exec(c)
	var wait waitRef
	if a := c.GetAcquire(); a != nil && (r.Code == fsmpb.Code_QUEUED || r.Code == fsmpb.Code_OK) {
		// Remembered for adopt; not part of the answer.
		r.Attempt, r.AttemptTry = a.GetAttempt(), a.GetTry()
		if r.Code == fsmpb.Code_QUEUED {
			wait = waitRef{lock: a.GetName(), owner: a.GetOwner()}
		}
	}
	s.remember(c.ClientId, c.Seq, r, wait)
	r.Attempt, r.AttemptTry = 0, 0
	return r
}

// replay answers a repeat of c's request with its remembered result r. A
// repeated Acquire first adopts the request's claim (see adopt), so that this
// call, the one the client now listens to, is the one whose withdrawal
// counts.
func (s *State) replay(cl *client, c *fsmpb.Command, r *fsmpb.Result) *fsmpb.Result {
	if a := c.GetAcquire(); a != nil {
		if kept := s.adopt(a, r); kept != nil {
			cl.keep(c.Seq, kept)
		}
	}
	replay := cloneResult(r)
	replay.Replayed, replay.Attempt, replay.AttemptTry, replay.Superseded = true, 0, 0, nil
	return replay
}

func dedupable(c *fsmpb.Command) bool {
	switch c.Op.(type) {
	case *fsmpb.Command_Expire, *fsmpb.Command_LeaderStart:
		return false
	}
	return true
}

// exec dispatches a command to its operation.
func (s *State) exec(c *fsmpb.Command) *fsmpb.Result {
	switch op := c.Op.(type) {
	case *fsmpb.Command_Acquire:
		return s.acquire(op.Acquire)
	case *fsmpb.Command_Renew:
		return s.renew(op.Renew)
	case *fsmpb.Command_Release:
		return s.release(op.Release)
	case *fsmpb.Command_Withdraw:
		return s.withdraw(op.Withdraw)
	case *fsmpb.Command_Expire:
		return s.expire(op.Expire)
	case *fsmpb.Command_LeaderStart:
		return s.leaderStart()
	case *fsmpb.Command_Put:
		return s.put(op.Put)
	case *fsmpb.Command_Delete:
		return s.del(op.Delete)
	case *fsmpb.Command_AclBootstrap:
		return s.aclBootstrap(op.AclBootstrap)
	case *fsmpb.Command_AclAddPrincipal:
		return s.aclAddPrincipal(op.AclAddPrincipal)
	case *fsmpb.Command_AclRemovePrincipal:
		return s.aclRemovePrincipal(op.AclRemovePrincipal)
	case *fsmpb.Command_AclAddToken:
		return s.aclAddToken(op.AclAddToken)
	case *fsmpb.Command_AclRemoveToken:
		return s.aclRemoveToken(op.AclRemoveToken)
	case *fsmpb.Command_AclGrant:
		return s.aclGrant(op.AclGrant)
	case *fsmpb.Command_AclRevoke:
		return s.aclRevoke(op.AclRevoke)
	}
	return invalid("command has no operation")
}

// prune forgets, once per PruneInterval of cluster time, clients unseen for
// more than ClientIdleMax and released lock records idle for more than
// LockIdleMax. Both are chosen by cluster time alone, so every replica
// prunes the same entries at the same log position.
func (s *State) prune() {
	if s.now-s.lastPrune < int64(PruneInterval) {
		return
	}
	s.lastPrune = s.now
	for s.lru.Len() > 0 && s.now-s.lru.items[0].lastSeen > int64(ClientIdleMax) {
		if c := s.lru.items[0]; s.waiting(c) {
			s.touch(c) // kept: see client.waiting
		} else {
			s.dropClient(c)
		}
	}
	for s.idle.Len() > 0 && s.now-s.idle.items[0].released > int64(LockIdleMax) {
		s.dropLock(s.idle.items[0])
	}
}
