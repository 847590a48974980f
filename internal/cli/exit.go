package cli

import (
	"context"
	"errors"

	"github.com/dlock-raft/dlock/client"
)

// Exit statuses of the client commands (docs/cli.md).
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitError: any failure not listed below.
	ExitError = 1
	// ExitUsage: bad flags or arguments, or a request the cluster refused as invalid.
	ExitUsage = 2
	// ExitNotFound: no such lock or key.
	ExitNotFound = 3
	// ExitNotHeld: the lock was not obtained or is not held: locked, wait timed out, not held, held by
	// another owner, token mismatch.
	ExitNotHeld = 4
	// ExitUnavailable: no node answered, the cluster has no leader, or no answer came before --timeout.
	ExitUnavailable = 5
	// ExitDenied: access control refused the request: no valid credentials, or no rule permits it.
	ExitDenied = 6
)

// usageError marks a mistake in how a command was invoked.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// UsageError marks err as a usage mistake, so that ExitCode returns ExitUsage. cmd/dlock uses it for
// its root command's own flag and argument errors; the commands added here mark theirs already.
func UsageError(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// notHeld are the outcomes that mean "the lock was not obtained, or is not held".
var notHeld = []error{client.ErrLocked, client.ErrWaitTimeout, client.ErrNotHeld, client.ErrHeldByOther,
	client.ErrTokenMismatch, client.ErrLockLost}

// ExitCode returns the exit status for the error a command returned (nil: ExitOK).
func ExitCode(err error) int {
	var usage *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &usage), errors.Is(err, client.ErrInvalid):
		return ExitUsage
	case errors.Is(err, client.ErrNotFound):
		return ExitNotFound
	case isAny(err, notHeld):
		return ExitNotHeld
	case errors.Is(err, client.ErrUnauthenticated), errors.Is(err, client.ErrPermissionDenied):
		return ExitDenied
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return ExitUnavailable
	default:
		return ExitError
	}
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
