package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// aclService implements dlockv1.AclServer. Its changes are state machine
// commands that act for the caller, which checks the admin permission as it
// applies them (Bootstrap excepted: it applies only while no principal
// exists).
type aclService struct {
	dlockv1.UnimplementedAclServer
	*Server
}

// tokenSecretBytes is the size of a token's random part.
const tokenSecretBytes = 32

var permissions = map[string]fsmpb.Permission{
	dlockv1.PermissionRead:  fsmpb.Permission_READ,
	dlockv1.PermissionLock:  fsmpb.Permission_LOCK,
	dlockv1.PermissionWrite: fsmpb.Permission_WRITE,
	dlockv1.PermissionAdmin: fsmpb.Permission_ADMIN,
}

// permissionName is a permission as users write it: read, lock, write, admin.
func permissionName(p fsmpb.Permission) string { return strings.ToLower(p.String()) }

// tokenHash checks a new token's form ("dlk_" and 32 random bytes in
// unpadded base64url) and returns its SHA-256.
func tokenHash(tok string) ([]byte, error) {
	raw, ok := strings.CutPrefix(tok, dlockv1.TokenPrefix)
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if !ok || err != nil || len(b) != tokenSecretBytes {
		return nil, invalid(fmt.Sprintf("token: want %q and %d random bytes in unpadded base64url", dlockv1.TokenPrefix, tokenSecretBytes))
	}
	h := sha256.Sum256([]byte(tok))
	return h[:], nil
}

// apply proposes one access control command for the caller and maps its
// result.
func (s aclService) apply(ctx context.Context, h *dlockv1.RequestHeader, cmd *fsmpb.Command) error {
	res, _, err := s.propose1(ctx, withHeader(h, cmd))
	if err != nil {
		return err
	}
	if res.Code != fsmpb.Code_OK {
		return resultError(res)
	}
	return nil
}

// Bootstrap creates the first principal with the admin permission and its
// token; ALREADY_EXISTS once any principal exists.
func (s aclService) Bootstrap(ctx context.Context, req *dlockv1.AclBootstrapRequest) (*dlockv1.AclBootstrapResponse, error) {
	if req.GetPrincipal() == "" {
		return nil, invalid("principal is empty")
	}
	hash, err := tokenHash(req.GetToken())
	if err != nil {
		return nil, err
	}
	cmd := &fsmpb.Command{Op: &fsmpb.Command_AclBootstrap{AclBootstrap: &fsmpb.AclBootstrap{Principal: req.GetPrincipal(), TokenHash: hash}}}
	if err := s.apply(ctx, req.GetHeader(), cmd); err != nil {
		return nil, err
	}
	return &dlockv1.AclBootstrapResponse{TokenId: fsm.TokenID([32]byte(hash))}, nil
}

// WhoAmI reports the caller's principal and its rules, as this node's
// replica knows them.
func (s aclService) WhoAmI(ctx context.Context, _ *dlockv1.WhoAmIRequest) (*dlockv1.WhoAmIResponse, error) {
	id := identityOf(ctx)
	resp := &dlockv1.WhoAmIResponse{AuthEnabled: s.opts.Auth.Enabled, Principal: id.principal, AuthenticatedBy: id.by}
	if id.principal == "" {
		return resp, nil
	}
	if err := s.node.Read(ctx, true, func(st *fsm.State) {
		if p, ok := st.Principal(id.principal); ok {
			resp.Rules = apiRules(p.Rules)
		}
	}); err != nil {
		return nil, nodeError(err)
	}
	return resp, nil
}

func (s aclService) AddPrincipal(ctx context.Context, req *dlockv1.AddPrincipalRequest) (*dlockv1.AddPrincipalResponse, error) {
	cmd := &fsmpb.Command{Op: &fsmpb.Command_AclAddPrincipal{AclAddPrincipal: &fsmpb.AclPrincipal{Name: req.GetName()}}}
	if err := s.apply(ctx, req.GetHeader(), cmd); err != nil {
		return nil, err
	}
	return &dlockv1.AddPrincipalResponse{}, nil
}

func (s aclService) RemovePrincipal(ctx context.Context, req *dlockv1.RemovePrincipalRequest) (*dlockv1.RemovePrincipalResponse, error) {
	cmd := &fsmpb.Command{Op: &fsmpb.Command_AclRemovePrincipal{AclRemovePrincipal: &fsmpb.AclPrincipal{Name: req.GetName()}}}
	if err := s.apply(ctx, req.GetHeader(), cmd); err != nil {
		return nil, err
	}
	return &dlockv1.RemovePrincipalResponse{}, nil
}

// ListPrincipals reports every principal with its rules and token ids.
func (s aclService) ListPrincipals(ctx context.Context, req *dlockv1.ListPrincipalsRequest) (*dlockv1.ListPrincipalsResponse, error) {
	var ps []fsm.PrincipalView
	if err := s.read(ctx, req.GetStale(), func(st *fsm.State) { ps = st.Principals() }); err != nil {
		return nil, err
	}
	resp := &dlockv1.ListPrincipalsResponse{}
	for _, p := range ps {
		resp.Principals = append(resp.Principals, &dlockv1.Principal{Name: p.Name, Rules: apiRules(p.Rules), TokenIds: p.TokenIDs})
	}
	return resp, nil
}

func (s aclService) CreateToken(ctx context.Context, req *dlockv1.CreateTokenRequest) (*dlockv1.CreateTokenResponse, error) {
	hash, err := tokenHash(req.GetToken())
	if err != nil {
		return nil, err
	}
	cmd := &fsmpb.Command{Op: &fsmpb.Command_AclAddToken{AclAddToken: &fsmpb.AclToken{Principal: req.GetPrincipal(), TokenHash: hash}}}
	if err := s.apply(ctx, req.GetHeader(), cmd); err != nil {
		return nil, err
	}
	return &dlockv1.CreateTokenResponse{TokenId: fsm.TokenID([32]byte(hash))}, nil
}

func (s aclService) RevokeToken(ctx context.Context, req *dlockv1.RevokeTokenRequest) (*dlockv1.RevokeTokenResponse, error) {
	cmd := &fsmpb.Command{Op: &fsmpb.Command_AclRemoveToken{AclRemoveToken: &fsmpb.AclToken{TokenId: req.GetTokenId()}}}
	if err := s.apply(ctx, req.GetHeader(), cmd); err != nil {
		return nil, err
	}
	return &dlockv1.RevokeTokenResponse{}, nil
}

func (s aclService) Grant(ctx context.Context, req *dlockv1.GrantRequest) (*dlockv1.GrantResponse, error) {
	r, err := fsmRule(req.GetPrincipal(), req.GetRule())
	if err != nil {
		return nil, err
	}
	if err := s.apply(ctx, req.GetHeader(), &fsmpb.Command{Op: &fsmpb.Command_AclGrant{AclGrant: r}}); err != nil {
		return nil, err
	}
	return &dlockv1.GrantResponse{}, nil
}

func (s aclService) Revoke(ctx context.Context, req *dlockv1.RevokeRequest) (*dlockv1.RevokeResponse, error) {
	r, err := fsmRule(req.GetPrincipal(), req.GetRule())
	if err != nil {
		return nil, err
	}
	if err := s.apply(ctx, req.GetHeader(), &fsmpb.Command{Op: &fsmpb.Command_AclRevoke{AclRevoke: r}}); err != nil {
		return nil, err
	}
	return &dlockv1.RevokeResponse{}, nil
}

func fsmRule(principal string, r *dlockv1.Rule) (*fsmpb.AclRule, error) {
	p, ok := permissions[r.GetPermission()]
	if !ok {
		return nil, invalid(fmt.Sprintf("permission %q: want read, lock, write or admin", r.GetPermission()))
	}
	return &fsmpb.AclRule{Principal: principal, Permission: p, Prefix: r.GetPrefix()}, nil
}

func apiRules(rs []fsm.Rule) []*dlockv1.Rule {
	out := make([]*dlockv1.Rule, len(rs))
	for i, r := range rs {
		out[i] = &dlockv1.Rule{Permission: permissionName(r.Permission), Prefix: r.Prefix}
	}
	return out
}
