package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// Sentinel errors. Every error this package returns for one of these outcomes wraps the sentinel, so
// callers branch with errors.Is, never on the message; the message keeps the server's explanation.
var (
	// ErrLocked: TryAcquire (or Acquire with WithWait(0)) found the lock held by another owner. Nothing
	// was changed.
	ErrLocked = errors.New("dlock: lock is held by another owner")
	// ErrWaitTimeout: Acquire waited in the lock's queue until its wait ended without being granted the
	// lock. The waiter has left the queue; the lock is not held.
	ErrWaitTimeout = errors.New("dlock: wait for lock timed out")
	// ErrNotHeld: Release or Renew named a lock that is free, unknown, or whose lease has passed.
	ErrNotHeld = errors.New("dlock: lock not held")
	// ErrHeldByOther: Release or Renew named a lock that another owner holds now.
	ErrHeldByOther = errors.New("dlock: lock held by another owner")
	// ErrTokenMismatch: Release or Renew gave a fencing token of an earlier hold; the lock has been
	// granted again since.
	ErrTokenMismatch = errors.New("dlock: token does not match the current hold")
	// ErrNotFound: Query named a lock that was never acquired, or Get or Delete a missing key.
	ErrNotFound = errors.New("dlock: not found")
	// ErrLimit: a size or count limit of the cluster refused the request (name, key or value too large,
	// too many waiters or holds). Nothing was changed.
	ErrLimit = errors.New("dlock: limit exceeded")
	// ErrDiskFull: the leader's disk is (nearly) full and it refused the write. Nothing was written; the
	// write may succeed once space is freed or leadership moves to a node with room.
	ErrDiskFull = errors.New("dlock: disk full")
	// ErrInvalid: the request is malformed (empty name or owner, TTL below 1ms, negative wait), either
	// found by this package before sending or refused by the cluster. Nothing was changed.
	ErrInvalid = errors.New("dlock: invalid request")
	// ErrStaleRequest: the cluster no longer remembers the request's sequence number, so it refused to
	// apply it again. The original may or may not have been applied: read the state to find out.
	ErrStaleRequest = errors.New("dlock: stale request")
	// ErrUnavailable: no endpoint answered, or the cluster has no leader, before the context ended or the
	// retry limit was reached. A write that failed this way may still have been applied (see the
	// package documentation, "Ambiguous outcomes").
	ErrUnavailable = errors.New("dlock: cluster unavailable")
	// ErrLockLost: Lock.Err after the client stopped being able to prove it holds the lock: a renewal
	// was refused, the lease ran out before a renewal succeeded, or the Client was closed. The error
	// also wraps the cause.
	ErrLockLost = errors.New("dlock: lock lost")
	// ErrClosed: the Client was closed before or during the call.
	ErrClosed = errors.New("dlock: client closed")
	// ErrUnauthenticated: the cluster has access control on and did not accept the call's credentials:
	// no token (WithToken) and no client certificate, an unknown or revoked token, or a token sent
	// without TLS to a cluster that refuses that. Nothing was changed.
	ErrUnauthenticated = errors.New("dlock: unauthenticated")
	// ErrPermissionDenied: the caller's principal has no access rule that permits the call. Nothing was
	// changed.
	ErrPermissionDenied = errors.New("dlock: permission denied")
	// ErrAlreadyExists: the principal or token exists already, or access control was bootstrapped
	// already. Nothing was changed.
	ErrAlreadyExists = errors.New("dlock: already exists")
	// ErrLastAdmin: removing the principal or its admin rule would leave nobody with the admin
	// permission. Nothing was changed.
	ErrLastAdmin = errors.New("dlock: last principal with the admin permission")
)

// reasonErrors is the one table that inverts the server's error table: google.rpc.ErrorInfo reason
// (domain "dlock") to sentinel. Keep it in step with api/dlockv1/reasons.go.
var reasonErrors = map[string]error{
	dlockv1.ReasonInvalid:       ErrInvalid,
	dlockv1.ReasonLocked:        ErrLocked,
	dlockv1.ReasonWaitTimeout:   ErrWaitTimeout,
	dlockv1.ReasonNotHeld:       ErrNotHeld,
	dlockv1.ReasonHeldByOther:   ErrHeldByOther,
	dlockv1.ReasonTokenMismatch: ErrTokenMismatch,
	dlockv1.ReasonNotFound:      ErrNotFound,
	dlockv1.ReasonLimit:         ErrLimit,
	dlockv1.ReasonStaleRequest:  ErrStaleRequest,
	dlockv1.ReasonNoLeader:      ErrUnavailable,
	dlockv1.ReasonShuttingDown:  ErrUnavailable,
	dlockv1.ReasonDiskFull:      ErrDiskFull,

	dlockv1.ReasonUnauthenticated:  ErrUnauthenticated,
	dlockv1.ReasonPermissionDenied: ErrPermissionDenied,
	dlockv1.ReasonAlreadyExists:    ErrAlreadyExists,
	dlockv1.ReasonLastAdmin:        ErrLastAdmin,
}

// statusError is an error the server (or gRPC) returned, mapped to a sentinel. It keeps the status so
// that status.FromError still works.
type statusError struct {
	kind error // the sentinel or context error; nil for an error with no mapping
	st   *status.Status
}

func (e *statusError) Error() string {
	switch {
	case e.kind == nil:
		return fmt.Sprintf("dlock: %s: %s", e.st.Code(), e.st.Message())
	case strings.HasPrefix(e.kind.Error(), "dlock: "):
		return fmt.Sprintf("%v: %s", e.kind, e.st.Message())
	default: // a context error
		return fmt.Sprintf("dlock: %v: %s", e.kind, e.st.Message())
	}
}

func (e *statusError) Unwrap() error { return e.kind }

// GRPCStatus lets status.FromError and status.Code see the original status.
func (e *statusError) GRPCStatus() *status.Status { return e.st }

// reason returns the dlock ErrorInfo reason carried by st, or "".
func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == dlockv1.ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

// mapError turns an error from a gRPC call into one that wraps a sentinel. A dlock reason decides; an
// error without one (from gRPC itself or a proxy) falls back on its code for the few codes that have an
// unambiguous meaning.
func mapError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if kind, ok := reasonErrors[reason(st)]; ok {
		return &statusError{kind: kind, st: st}
	}
	var kind error
	switch st.Code() {
	case codes.Unavailable:
		kind = ErrUnavailable
	case codes.Canceled:
		kind = context.Canceled
	case codes.DeadlineExceeded:
		kind = context.DeadlineExceeded
	case codes.Unauthenticated:
		kind = ErrUnauthenticated // e.g. gRPC's own refusal to send a token without TLS
	case codes.PermissionDenied:
		kind = ErrPermissionDenied
	}
	return &statusError{kind: kind, st: st}
}

// retryable reports whether a failed attempt should move on to the next endpoint: the endpoint or the
// cluster was unavailable (connection refused, no leader, shutting down). The request carries the same
// header on the next attempt, so it is applied at most once.
func retryable(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable
}

// refused reports whether err is the cluster's definite "no" to a renewal or release of a hold: after
// it the client cannot hold the lock any more.
func refused(err error) bool {
	return errors.Is(err, ErrNotHeld) || errors.Is(err, ErrHeldByOther) || errors.Is(err, ErrTokenMismatch)
}

// unavailableError is returned when the retry loop gave up: cause is the context's error, or nil when
// the retry limit ended the loop.
type unavailableError struct {
	attempts int
	last     error
	cause    error
}

func (e *unavailableError) Error() string {
	last := e.last.Error()
	if st, ok := status.FromError(e.last); ok {
		last = fmt.Sprintf("%s: %s", st.Code(), st.Message())
	}
	msg := fmt.Sprintf("%v after %d attempts, last: %s", ErrUnavailable, e.attempts, last)
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *unavailableError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.cause}
}

// invalidf returns an error wrapping ErrInvalid for a request refused before sending.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
