package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// Access control on the client plane (Options.Auth). Every call but the
// open ones authenticates first: a bearer token, looked up by its SHA-256
// in the replicated state, or a verified TLS client certificate, whose
// Subject CommonName names the principal. The open ones are Acl.Bootstrap,
// the gRPC health service and Cluster.Status, which probes and `dlock
// cluster status` use, and which tells the members, the leader and Raft
// indices, nothing of locks, keys or principals. Then:
//
//   - writes (Acquire, Renew, Release, Put, Delete, and the Acl changes)
//     carry the principal into their state machine command, which applies
//     them only if the principal's rules permit it at that point of the log;
//   - reads (Query, List, Get, KV List, ListPrincipals) are checked against
//     the same state view they read, so a linearizable read is checked
//     against the rules as of its read index;
//   - cluster operations (TransferLeader, AddMember, RemoveMember,
//     Snapshot) need the admin permission, checked by a linearizable read;
//   - WhoAmI needs only an authenticated principal.
//
// A method this table does not know needs the admin permission.

// Where a call's permission is checked.
type checkKind uint8

const (
	checkAdmin  checkKind = iota // a linearizable admin check before the call
	checkOpen                    // no credentials needed
	checkAuthed                  // any authenticated principal
	checkByFSM                   // the state machine checks the command's principal
	checkOnRead                  // the read checks its own state view (accessOf)
)

var methodChecks = map[string]checkKind{
	dlockv1.Lock_Acquire_FullMethodName:        checkByFSM,
	dlockv1.Lock_Renew_FullMethodName:          checkByFSM,
	dlockv1.Lock_Release_FullMethodName:        checkByFSM,
	dlockv1.Lock_Query_FullMethodName:          checkOnRead,
	dlockv1.Lock_List_FullMethodName:           checkOnRead,
	dlockv1.KV_Put_FullMethodName:              checkByFSM,
	dlockv1.KV_Delete_FullMethodName:           checkByFSM,
	dlockv1.KV_Get_FullMethodName:              checkOnRead,
	dlockv1.KV_List_FullMethodName:             checkOnRead,
	dlockv1.Cluster_Status_FullMethodName:      checkOpen,
	dlockv1.Acl_Bootstrap_FullMethodName:       checkOpen,
	dlockv1.Acl_WhoAmI_FullMethodName:          checkAuthed,
	dlockv1.Acl_ListPrincipals_FullMethodName:  checkOnRead,
	dlockv1.Acl_AddPrincipal_FullMethodName:    checkByFSM,
	dlockv1.Acl_RemovePrincipal_FullMethodName: checkByFSM,
	dlockv1.Acl_CreateToken_FullMethodName:     checkByFSM,
	dlockv1.Acl_RevokeToken_FullMethodName:     checkByFSM,
	dlockv1.Acl_Grant_FullMethodName:           checkByFSM,
	dlockv1.Acl_Revoke_FullMethodName:          checkByFSM,
}

// healthPrefix is the standard gRPC health service: open, it tells nothing
// but whether the node serves.
const healthPrefix = "/grpc.health.v1.Health/"

func checkOf(method string) checkKind {
	if strings.HasPrefix(method, healthPrefix) {
		return checkOpen
	}
	if k, ok := methodChecks[method]; ok {
		return k
	}
	return checkAdmin
}

// tokenBytesMax bounds the authorization value a node hashes.
const tokenBytesMax = 1024

// identity is who a call was authenticated as.
type identity struct {
	principal string
	by        string // "token" or "certificate"
}

type identityKey struct{}

// identityOf returns the caller's identity; zero when access control is off
// or the method is open.
func identityOf(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// access is what a read must be permitted: perm on name, or on every name
// under name when prefix.
type access struct {
	principal string
	perm      fsmpb.Permission
	name      string
	prefix    bool
}

type accessKey struct{}

// readAccess returns the access a read call needs, or nil for none.
func readAccess(ctx context.Context, req any) *access {
	id := identityOf(ctx)
	if id.principal == "" {
		return nil
	}
	a := &access{principal: id.principal, perm: fsmpb.Permission_READ}
	switch r := req.(type) {
	case *dlockv1.QueryRequest:
		a.name = r.GetName()
	case *dlockv1.GetRequest:
		a.name = r.GetKey()
	case *dlockv1.ListLocksRequest:
		a.name, a.prefix = r.GetPrefix(), true
	case *dlockv1.ListKeysRequest:
		a.name, a.prefix = r.GetPrefix(), true
	default:
		a.perm = fsmpb.Permission_ADMIN
	}
	return a
}

// denied returns the PermissionDenied error of a read st does not permit.
func (a *access) denied(st *fsm.State) error {
	if a == nil || st.Allowed(a.principal, a.perm, a.name) {
		return nil
	}
	what := fmt.Sprintf("%s permission on %q", permissionName(a.perm), a.name)
	switch {
	case a.perm == fsmpb.Permission_ADMIN:
		what = "admin permission"
	case a.prefix:
		what = fmt.Sprintf("%s permission on every name under prefix %q", permissionName(a.perm), a.name)
	}
	return permissionDenied(fmt.Sprintf("principal %q lacks the %s", a.principal, what))
}

func permissionDenied(msg string) error {
	return statusError(codes.PermissionDenied, dlockv1.ReasonPermissionDenied, "dlock: "+msg)
}

func unauthenticated(msg string) error {
	return statusError(codes.Unauthenticated, dlockv1.ReasonUnauthenticated, "dlock: "+msg)
}

// authUnary authenticates and authorizes a unary call (see the table above).
func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	kind := checkOf(info.FullMethod)
	if !s.opts.Auth.Enabled || kind == checkOpen {
		return h(ctx, req)
	}
	id, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, identityKey{}, id)
	switch kind {
	case checkAdmin:
		if err := s.requireAdmin(ctx, id); err != nil {
			return nil, err
		}
	case checkOnRead:
		ctx = context.WithValue(ctx, accessKey{}, readAccess(ctx, req))
	}
	return h(ctx, req)
}

// authStream authenticates a streaming call; every one needs the admin
// permission (Cluster.Snapshot copies the whole state).
func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !s.opts.Auth.Enabled || checkOf(info.FullMethod) == checkOpen {
		return h(srv, ss)
	}
	id, err := s.authenticate(ss.Context())
	if err != nil {
		return err
	}
	if err := s.requireAdmin(context.WithValue(ss.Context(), identityKey{}, id), id); err != nil {
		return err
	}
	return h(srv, ss)
}

// requireAdmin checks the admin permission with a linearizable read, so an
// admin revoked before the call began is refused.
func (s *Server) requireAdmin(ctx context.Context, id identity) error {
	a := &access{principal: id.principal, perm: fsmpb.Permission_ADMIN}
	return s.read(context.WithValue(ctx, accessKey{}, a), false, func(*fsm.State) {})
}

// authenticate finds the caller's principal: from a bearer token if the
// call carries one, else from a verified client certificate.
func (s *Server) authenticate(ctx context.Context) (identity, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	tlsInfo, hasTLS := peerTLS(ctx)
	if len(vals) > 0 {
		tok, err := bearer(vals)
		if err != nil {
			return identity{}, err
		}
		if !hasTLS && !s.opts.Auth.AllowInsecureTokens {
			return identity{}, unauthenticated("a token sent without TLS is refused (auth.allow_insecure_tokens is off); connect with TLS")
		}
		principal, err := s.tokenPrincipal(ctx, sha256.Sum256([]byte(tok)))
		if err != nil {
			return identity{}, err
		}
		return identity{principal: principal, by: "token"}, nil
	}
	if hasTLS && len(tlsInfo.State.VerifiedChains) > 0 && len(tlsInfo.State.PeerCertificates) > 0 {
		if cn := tlsInfo.State.PeerCertificates[0].Subject.CommonName; cn != "" {
			return identity{principal: cn, by: "certificate"}, nil
		}
		return identity{}, unauthenticated("the client certificate has no Subject CommonName to name a principal")
	}
	return identity{}, unauthenticated("no credentials: send a token (authorization: Bearer <token>) or a verified client certificate")
}

// bearer extracts the token of one "Bearer <token>" authorization value.
func bearer(vals []string) (string, error) {
	if len(vals) != 1 {
		return "", unauthenticated(fmt.Sprintf("%d authorization values; send one", len(vals)))
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	tok = strings.TrimSpace(tok)
	switch {
	case !ok || !strings.EqualFold(scheme, "bearer") || tok == "":
		return "", unauthenticated("authorization: want \"Bearer <token>\"")
	case len(tok) > tokenBytesMax:
		return "", unauthenticated(fmt.Sprintf("token is %d bytes, over %d", len(tok), tokenBytesMax))
	}
	return tok, nil
}

// peerTLS returns the TLS state of the call's connection, if it has one.
func peerTLS(ctx context.Context) (credentials.TLSInfo, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return credentials.TLSInfo{}, false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	return info, ok
}

// tokenPrincipal looks a token hash up in this node's replica, and, if it
// is not there, once more after a linearizable read: a token created a
// moment ago on another node works at once.
func (s *Server) tokenPrincipal(ctx context.Context, hash [32]byte) (string, error) {
	var principal string
	var ok bool
	lookup := func(st *fsm.State) { principal, ok = st.TokenPrincipal(hash) }
	if err := s.node.Read(ctx, true, lookup); err != nil {
		return "", nodeError(err)
	}
	if !ok {
		if err := s.read(ctx, false, lookup); err != nil {
			return "", err
		}
	}
	if !ok {
		return "", unauthenticated("unknown token")
	}
	return principal, nil
}
