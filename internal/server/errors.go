package server

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
	"github.com/dlock-raft/dlock/internal/node"
)

// outcome is one row of the table that maps an internal outcome to what a
// client sees: a gRPC code and a reason. The client inverts it.
type outcome struct {
	code   codes.Code
	reason string
}

var resultOutcomes = map[fsmpb.Code]outcome{
	fsmpb.Code_INVALID:        {codes.InvalidArgument, dlockv1.ReasonInvalid},
	fsmpb.Code_LOCKED:         {codes.FailedPrecondition, dlockv1.ReasonLocked},
	fsmpb.Code_NOT_HELD:       {codes.FailedPrecondition, dlockv1.ReasonNotHeld},
	fsmpb.Code_HELD_BY_OTHER:  {codes.FailedPrecondition, dlockv1.ReasonHeldByOther},
	fsmpb.Code_TOKEN_MISMATCH: {codes.FailedPrecondition, dlockv1.ReasonTokenMismatch},
	fsmpb.Code_NOT_FOUND:      {codes.NotFound, dlockv1.ReasonNotFound},
	fsmpb.Code_LIMIT:          {codes.ResourceExhausted, dlockv1.ReasonLimit},
	fsmpb.Code_STALE_REQUEST:  {codes.FailedPrecondition, dlockv1.ReasonStaleRequest},
	fsmpb.Code_IGNORED:        {codes.FailedPrecondition, dlockv1.ReasonNotHeld},
	fsmpb.Code_DENIED:         {codes.PermissionDenied, dlockv1.ReasonPermissionDenied},
	fsmpb.Code_EXISTS:         {codes.AlreadyExists, dlockv1.ReasonAlreadyExists},
	fsmpb.Code_LAST_ADMIN:     {codes.FailedPrecondition, dlockv1.ReasonLastAdmin},
}

// statusError builds a gRPC error carrying an ErrorInfo with the reason.
func statusError(c codes.Code, reason, msg string) error {
	st := status.New(c, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: dlockv1.ErrorDomain}); err == nil {
		st = d
	}
	return st.Err()
}

func invalid(msg string) error {
	return statusError(codes.InvalidArgument, dlockv1.ReasonInvalid, "dlock: "+msg)
}

// resultError turns a non-OK state machine result into the client's error.
func resultError(r *fsmpb.Result) error {
	o, ok := resultOutcomes[r.Code]
	if !ok {
		return statusError(codes.Internal, "", "dlock: unexpected result "+r.Code.String()+": "+r.Message)
	}
	msg := r.Message
	if msg == "" {
		msg = "dlock: " + r.Code.String()
	}
	return statusError(o.code, o.reason, msg)
}

// nodeError turns a proposal or read failure into the client's error.
func nodeError(err error) error {
	switch {
	case errors.Is(err, node.ErrDiskFull):
		return diskFullError(err)
	case errors.Is(err, node.ErrClosed):
		return statusError(codes.Unavailable, dlockv1.ReasonShuttingDown, err.Error())
	case errors.Is(err, node.ErrNoLeader):
		return statusError(codes.Unavailable, dlockv1.ReasonNoLeader, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return statusError(codes.DeadlineExceeded, dlockv1.ReasonNoLeader, "dlock: "+err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "dlock: "+err.Error())
	}
	return statusError(codes.Unavailable, dlockv1.ReasonNoLeader, "dlock: "+err.Error())
}

// reasonOf returns the ErrorInfo reason of a status error, "" if none.
func reasonOf(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

// diskFullError is the client's error for a write that failed with
// node.ErrDiskFull: ResourceExhausted, so that clients do not retry it
// at once, with the leader's message naming the node and its free space.
func diskFullError(err error) error {
	return statusError(codes.ResourceExhausted, dlockv1.ReasonDiskFull, err.Error())
}
