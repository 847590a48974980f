package dlockv1

// ErrorDomain is the google.rpc.ErrorInfo domain of every dlock error.
const ErrorDomain = "dlock"

// Reasons carried in the google.rpc.ErrorInfo detail of a dlock error. The
// server maps each outcome to one gRPC code and one reason; clients branch on
// the reason, never on the message text.
const (
	// ReasonInvalid (InvalidArgument): the request is malformed: an empty
	// name or owner, a TTL <= 0, a negative wait. Nothing was changed.
	ReasonInvalid = "INVALID"
	// ReasonLocked (FailedPrecondition): the lock is held by another owner
	// and the request asked not to wait.
	ReasonLocked = "LOCKED"
	// ReasonWaitTimeout (DeadlineExceeded): the wait ended before the lock
	// was granted; the waiter has left the queue.
	ReasonWaitTimeout = "WAIT_TIMEOUT"
	// ReasonNotHeld (FailedPrecondition): the lock is free, unknown, or its
	// lease has passed.
	ReasonNotHeld = "NOT_HELD"
	// ReasonHeldByOther (FailedPrecondition): the lock is held by another owner.
	ReasonHeldByOther = "HELD_BY_OTHER"
	// ReasonTokenMismatch (FailedPrecondition): the token names an earlier hold.
	ReasonTokenMismatch = "TOKEN_MISMATCH"
	// ReasonNotFound (NotFound): no such lock or key.
	ReasonNotFound = "NOT_FOUND"
	// ReasonLimit (ResourceExhausted): a size or count limit refused the
	// request. Nothing was changed.
	ReasonLimit = "LIMIT"
	// ReasonStaleRequest (FailedPrecondition): the request's sequence number
	// is older than the cluster remembers; it was not applied again.
	ReasonStaleRequest = "STALE_REQUEST"
	// ReasonNoLeader (Unavailable): the cluster has no leader the node can
	// reach; the request may be retried. A write that failed this way may
	// still have been committed: retry it with the same header.
	ReasonNoLeader = "NO_LEADER"
	// ReasonShuttingDown (Unavailable): the node is stopping; retry elsewhere.
	ReasonShuttingDown = "SHUTTING_DOWN"
	// ReasonDiskFull (ResourceExhausted): the leader refused a write because
	// its disk is (nearly) full. Nothing was written; retry once space is
	// freed or leadership has moved to a node with room.
	ReasonDiskFull = "DISK_FULL"
)

// Reasons of a membership change (Cluster.AddMember, Cluster.RemoveMember).
const (
	// ReasonChangeInProgress (FailedPrecondition): the leader is running
	// another membership change. Nothing changed; retry once it has ended.
	ReasonChangeInProgress = "CHANGE_IN_PROGRESS"
	// ReasonLastVoter (FailedPrecondition): the removal would leave the
	// cluster without a voter. Nothing changed.
	ReasonLastVoter = "LAST_VOTER"
	// ReasonMemberUnreachable (FailedPrecondition): the node to add did not
	// answer at its peer address. Nothing changed.
	ReasonMemberUnreachable = "MEMBER_UNREACHABLE"
	// ReasonNotCaughtUp (DeadlineExceeded): the node was added as a
	// non-voter but had not caught up by the deadline; it stays a
	// non-voter, and adding it again promotes it.
	ReasonNotCaughtUp = "NOT_CAUGHT_UP"
)

// Reasons of access control (nodes with auth.enabled; see the Acl service).
const (
	// ReasonUnauthenticated (Unauthenticated): the request carried no
	// credentials the node accepts: no token and no verified client
	// certificate, an unknown or malformed token, or a token sent without
	// TLS to a node that does not allow that. Nothing was changed.
	ReasonUnauthenticated = "UNAUTHENTICATED"
	// ReasonPermissionDenied (PermissionDenied): the caller's principal has
	// no rule that permits the request. Nothing was changed.
	ReasonPermissionDenied = "PERMISSION_DENIED"
	// ReasonAlreadyExists (AlreadyExists): the principal or token exists
	// already, or access control was bootstrapped already. Nothing was
	// changed.
	ReasonAlreadyExists = "ALREADY_EXISTS"
	// ReasonLastAdmin (FailedPrecondition): the change would leave no
	// principal with the admin permission. Nothing was changed.
	ReasonLastAdmin = "LAST_ADMIN"
)

// Permissions of an access rule (Rule.permission).
const (
	PermissionRead  = "read"
	PermissionLock  = "lock"
	PermissionWrite = "write"
	PermissionAdmin = "admin"
)

// TokenPrefix starts every access token: "dlk_" then 43 base64url
// characters (32 random bytes, unpadded).
const TokenPrefix = "dlk_"
