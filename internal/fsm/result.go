package fsm

import (
	"fmt"
	"unicode/utf8"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// Result messages are for humans; callers branch on Code only. They are built
// from the command alone, so every replica produces the same bytes.

func refuse(code fsmpb.Code, format string, args ...any) *fsmpb.Result {
	return &fsmpb.Result{Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *fsmpb.Result {
	return refuse(fsmpb.Code_INVALID, format, args...)
}

func overLimit(format string, args ...any) *fsmpb.Result {
	return refuse(fsmpb.Code_LIMIT, format, args...)
}

// holdResult describes l's current hold to its owner.
func holdResult(code fsmpb.Code, l *lock) *fsmpb.Result {
	return &fsmpb.Result{
		Code:              code,
		Token:             l.hold.token,
		Nonce:             l.nonce,
		TtlNanos:          l.hold.ttl,
		AcquiredUnixNanos: l.hold.acquiredUnix,
	}
}

// cloneResult copies a flat Result field by field (much cheaper than
// proto.Clone; TestCloneResultCopiesEveryField keeps it complete).
func cloneResult(r *fsmpb.Result) *fsmpb.Result {
	return &fsmpb.Result{
		Code:              r.Code,
		Message:           r.Message,
		Token:             r.Token,
		Nonce:             r.Nonce,
		TtlNanos:          r.TtlNanos,
		AcquiredUnixNanos: r.AcquiredUnixNanos,
		Position:          r.Position,
		NextOwner:         r.NextOwner,
		Created:           r.Created,
		Released:          r.Released,
		Replayed:          r.Replayed,
		Attempt:           r.Attempt,
		Superseded:        r.Superseded,
		AttemptTry:        r.AttemptTry,
	}
}

// checkID validates a name, owner, key or client id: INVALID when empty or not
// UTF-8 (it could not be encoded in a snapshot), LIMIT when over max bytes.
func checkID(what, v string, max int) *fsmpb.Result {
	switch {
	case v == "":
		return invalid("%s is empty", what)
	case !utf8.ValidString(v):
		return invalid("%s is not valid UTF-8", what)
	case len(v) > max:
		return overLimit("%s is %d bytes, over the limit of %d", what, len(v), max)
	}
	return nil
}

func (s *State) checkName(v string) *fsmpb.Result {
	return checkID("lock name", v, s.limits.NameBytesMax)
}

func (s *State) checkOwner(v string) *fsmpb.Result {
	return checkID("owner", v, s.limits.OwnerBytesMax)
}

func checkPositive(what string, v int64) *fsmpb.Result {
	if v <= 0 {
		return invalid("%s is %d, must be positive", what, v)
	}
	return nil
}

func checkNotNegative(what string, v int64) *fsmpb.Result {
	if v < 0 {
		return invalid("%s is %d, must not be negative", what, v)
	}
	return nil
}

// firstProblem returns the first INVALID among rs, else the first LIMIT, else
// nil: a malformed command is reported as such even if it is also too big.
func firstProblem(rs ...*fsmpb.Result) *fsmpb.Result {
	var over *fsmpb.Result
	for _, r := range rs {
		switch {
		case r == nil:
		case r.Code == fsmpb.Code_INVALID:
			return r
		case over == nil:
			over = r
		}
	}
	return over
}
