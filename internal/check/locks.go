package check

import (
	"fmt"

	"github.com/anishathalye/porcupine"

	"github.com/dlock-raft/dlock/internal/history"
)

// Locks checks that the acquire, renew, release and query ops of a history
// are linearizable against a model of one lock, one lock at a time. Other
// kinds are ignored.
//
// WARNING: the model has no clock. It holds only for histories whose
// leases never expire: the workload must ask for TTLs longer than the whole
// run (and than any hold it abandons), or this check reports the expiries
// as violations.
func Locks(ops []history.Op, opt LinOptions) Result {
	return linearize("locks", lockModel(), lockParts(ops), opt)
}

// lockInput is what a lock op asked.
type lockInput struct {
	kind  history.Kind
	owner string
	token uint64 // renew, release: 0 = any
	wait  bool   // acquire: it could have queued
}

// lockOutput is what a lock op was told. Zero token or nonce: not recorded.
type lockOutput struct {
	outcome history.Outcome
	token   uint64
	nonce   uint64
	holder  string // query
	found   bool   // query
}

// lockState is one lock. A value type, so states compare with ==.
type lockState struct {
	found  bool   // the lock has a record: it was granted at least once
	holder string // "" when free
	// ghost: the hold was never acknowledged to its owner (its acquire was
	// refused or unanswered), and the server may end it at any moment by
	// withdrawing that acquire.
	ghost bool
	// token is the current hold's, or the last hold's when free; 0 when
	// not yet known (a ghost's). floor is the highest token known to have
	// been granted for this lock: an unknown token exceeds it.
	token, floor uint64
	nonce        uint64 // grants of this lock
	done         bool   // past the end of the history: see endOfHistory
}

func lockModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{lockState{}} },
		Step: func(st, in, out any) []any {
			s := st.(lockState)
			switch {
			case s.done:
				return []any{s}
			case in == (endOfHistory{}):
				s.done = true
				return []any{s}
			}
			next := lockStep(s, in.(lockInput), out.(lockOutput))
			if s.ghost {
				next = append(next, lockStep(endHold(s), in.(lockInput), out.(lockOutput))...)
			}
			return next
		},
		Hash: func(st any) uint64 {
			s := st.(lockState)
			h := newHash().flag(s.found).str(s.holder).flag(s.ghost)
			return uint64(h.num(s.token).num(s.floor).num(s.nonce).flag(s.done))
		},
		DescribeOperation: describeLockOp,
		DescribeState: func(st any) string {
			s := st.(lockState)
			switch {
			case s.done:
				return "end"
			case !s.found:
				return "no record"
			case s.holder == "":
				return fmt.Sprintf("free last=%s nonce=%d", tokenText(s), s.nonce)
			case s.ghost:
				return fmt.Sprintf("maybe %q token=%s nonce=%d", s.holder, tokenText(s), s.nonce)
			}
			return fmt.Sprintf("%q token=%s nonce=%d", s.holder, tokenText(s), s.nonce)
		},
	}
	return nm.ToModel()
}

func tokenText(s lockState) string {
	if s.token == 0 {
		return fmt.Sprintf(">%d", s.floor)
	}
	return fmt.Sprint(s.token)
}

func describeLockOp(in, out any) string {
	if in == (endOfHistory{}) {
		return "end"
	}
	i, o := in.(lockInput), out.(lockOutput)
	switch i.kind {
	case history.Acquire:
		if o.outcome == history.OK {
			return fmt.Sprintf("acquire(%q) token %d nonce %d", i.owner, o.token, o.nonce)
		}
		return fmt.Sprintf("acquire(%q) %s", i.owner, o.outcome)
	case history.Query:
		if !o.found {
			return "query() no record"
		}
		return fmt.Sprintf("query() %q token %d nonce %d", o.holder, o.token, o.nonce)
	}
	return fmt.Sprintf("%s(%q, %d) %s", i.kind, i.owner, i.token, o.outcome)
}

// endHold is s after its hold ended (released, withdrawn).
func endHold(s lockState) lockState {
	s.holder, s.ghost = "", false
	return s
}

// pin returns s with its (current or last) token learned to be t, and
// whether t can be it.
func pin(s lockState, t uint64) (lockState, bool) {
	switch {
	case t == 0:
		return s, true
	case s.token != 0:
		return s, s.token == t
	case t <= s.floor:
		return s, false
	}
	s.token, s.floor = t, t
	return s, true
}

// grant is s after a new grant to owner with token t (0: not known).
func grant(s lockState, owner string, t uint64, ghost bool) lockState {
	s.found, s.holder, s.ghost = true, owner, ghost
	s.floor = max(s.floor, s.token)
	s.token = t
	s.floor = max(s.floor, t)
	s.nonce++
	return s
}

// holds reports whether owner holds s with token t (0: any). A hold whose
// token is unknown may or may not be t.
func holds(s lockState, owner string, t uint64) (surely, maybe bool) {
	if s.holder != owner || s.holder == "" {
		return false, false
	}
	if t == 0 || s.token == t {
		return true, true
	}
	return false, s.token == 0
}

// lockStep returns the states the lock can be in after the op, none if
// the op cannot have been told what it was told in state s. An unanswered
// op takes effect here: its having none is placing it after endOfHistory.
func lockStep(s lockState, in lockInput, out lockOutput) []any {
	switch in.kind {
	case history.Acquire:
		return acquireStep(s, in, out)
	case history.Release, history.Renew:
		return releaseStep(s, in, out)
	case history.Query:
		if !out.found {
			if s.found {
				return nil
			}
			return []any{s}
		}
		if !s.found || s.holder != out.holder || (out.nonce != 0 && out.nonce != s.nonce) {
			return nil
		}
		if p, ok := pin(s, out.token); ok {
			return []any{p}
		}
	}
	return nil
}

func acquireStep(s lockState, in lockInput, out lockOutput) []any {
	switch out.outcome {
	case history.OK:
		switch s.holder {
		case in.owner: // reentrant: same hold, now acknowledged
			p, ok := pin(s, out.token)
			if !ok || (out.nonce != 0 && out.nonce != s.nonce) {
				return nil
			}
			p.ghost = false
			return []any{p}
		case "":
			if out.token <= max(s.floor, s.token) || (out.nonce != 0 && out.nonce != s.nonce+1) {
				return nil
			}
			return []any{grant(s, in.owner, out.token, false)}
		}
		return nil
	case history.Refused:
		switch {
		case s.holder != "" && s.holder != in.owner:
			return []any{s}
		case s.holder == "" && in.wait:
			// The grant raced with the end of the wait, and the server
			// withdrew it (or will: a withdrawal can fail).
			return []any{grant(s, in.owner, 0, true)}
		}
		return nil
	}
	if s.holder == "" {
		return []any{grant(s, in.owner, 0, true)}
	}
	return nil // queued, or reentrant: no effect yet
}

// releaseStep steps a release or a renew: both need the owner to hold the
// lock with the token; a release then frees it.
func releaseStep(s lockState, in lockInput, out lockOutput) []any {
	surely, maybe := holds(s, in.owner, in.token)
	done := func() (lockState, bool) {
		p, ok := pin(s, in.token)
		if !ok {
			return p, false
		}
		if in.kind == history.Release {
			return endHold(p), true
		}
		if p, ok = pin(p, out.token); ok {
			p.ghost = false // the owner now knows it holds the lock
		}
		return p, ok
	}
	switch out.outcome {
	case history.OK:
		if p, ok := done(); maybe && ok {
			return []any{p}
		}
		return nil
	case history.Refused:
		if surely {
			return nil
		}
		return []any{s}
	}
	if p, ok := done(); maybe && ok && in.kind == history.Release {
		return []any{p}
	}
	return nil
}

// lockParts turns the lock ops into porcupine operations, one partition per
// lock. Unanswered queries and renews are left out: with leases that never
// expire, neither can change what any other op sees.
func lockParts(ops []history.Op) []part {
	inf := never(ops)
	byLock := map[string][]porcupine.Operation{}
	for _, op := range ops {
		in := lockInput{kind: op.Kind, owner: op.Owner, token: op.Token, wait: op.Wait > 0}
		out := lockOutput{outcome: op.Outcome, token: op.ResToken, nonce: op.ResNonce,
			holder: op.ResHolder, found: op.ResFound}
		ret := int64(op.Return)
		switch op.Kind {
		case history.Acquire, history.Release:
			if op.Outcome == history.Unknown {
				ret = inf
			}
		case history.Renew, history.Query:
			if op.Outcome == history.Unknown {
				continue
			}
			// A refused query can only mean no record (NotFound).
			out.found = out.found && op.Outcome == history.OK
		default:
			continue
		}
		byLock[op.Name] = append(byLock[op.Name], operation(op, in, out, ret))
	}
	return partitions(byLock, inf)
}
