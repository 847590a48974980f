package client

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/base64"
	"strings"

	"google.golang.org/grpc"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// Access control. A cluster whose nodes set auth.enabled authenticates every call, by a bearer token
// (WithToken) or a verified TLS client certificate whose Subject CommonName names the principal, and
// permits it only if one of the principal's rules does: otherwise the call fails with ErrUnauthenticated
// or ErrPermissionDenied and changes nothing. See docs/security.md (Access control).

// Permissions an access Rule grants.
const (
	// PermRead covers Query, Locks, Get and Keys on the names under the rule's prefix.
	PermRead = dlockv1.PermissionRead
	// PermLock covers Acquire, TryAcquire, Renew and Release of the locks under the prefix.
	PermLock = dlockv1.PermissionLock
	// PermWrite covers Put and Delete of the keys under the prefix.
	PermWrite = dlockv1.PermissionWrite
	// PermAdmin covers everything on every name, cluster operations (membership, leadership transfer,
	// snapshots) and access control management. Its prefix is empty.
	PermAdmin = dlockv1.PermissionAdmin
)

// Rule grants Permission on every lock name and key that starts with Prefix ("" covers all).
type Rule struct {
	Permission string `json:"permission"`
	Prefix     string `json:"prefix"`
}

// Principal is one access control principal with its rules and the ids of its tokens.
type Principal struct {
	Name     string   `json:"name"`
	Rules    []Rule   `json:"rules"`
	TokenIDs []string `json:"token_ids"`
}

// Identity is who the cluster takes the caller for (WhoAmI).
type Identity struct {
	// AuthEnabled is false when the answering node does not check access; the other fields are then empty.
	AuthEnabled bool `json:"auth_enabled"`
	// Principal names the caller.
	Principal string `json:"principal"`
	// AuthenticatedBy is "token" or "certificate".
	AuthenticatedBy string `json:"authenticated_by"`
	Rules           []Rule `json:"rules"`
}

// Token is a new access token. Secret is shown once: the cluster keeps only its SHA-256, and ID names it
// afterwards (RevokeToken, Principals).
type Token struct {
	Principal string `json:"principal"`
	ID        string `json:"token_id"`
	Secret    string `json:"token"`
}

// WithToken sends token (as "authorization: Bearer <token>") with every call, to clusters with access
// control on. gRPC sends it only over TLS unless AllowInsecureToken is given too. Default: no token.
func WithToken(token string) Option {
	return func(o *options) error {
		if token == "" || strings.ContainsAny(token, " \t\r\n") {
			return invalidf("token: want a non-empty token without spaces")
		}
		o.token = token
		return nil
	}
}

// AllowInsecureToken lets WithToken's token travel on connections without TLS.
//
// WARNING: anyone on the network path can then read the token and act as its principal until it is
// revoked. Use it only on a trusted network (loopback, a private overlay), against nodes that set
// auth.allow_insecure_tokens.
func AllowInsecureToken() Option {
	return func(o *options) error {
		o.insecureToken = true
		return nil
	}
}

func (o options) tokenDialOptions() []grpc.DialOption {
	if o.token == "" {
		return nil
	}
	return []grpc.DialOption{grpc.WithPerRPCCredentials(bearerToken{token: o.token, insecure: o.insecureToken})}
}

// bearerToken is the PerRPCCredentials of WithToken.
type bearerToken struct {
	token    string
	insecure bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity makes gRPC refuse to send the token without TLS, unless AllowInsecureToken.
func (b bearerToken) RequireTransportSecurity() bool { return !b.insecure }

// NewTokenSecret returns a fresh token secret: "dlk_" and 32 bytes from crypto/rand in unpadded
// base64url.
func NewTokenSecret() string {
	b := make([]byte, 32)
	_, _ = cryptorand.Read(b) // crypto/rand.Read never fails
	return dlockv1.TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// Bootstrap turns on the cluster's access control bookkeeping: it creates principal, with the admin
// permission, and its first token, and returns the token. It succeeds once, while no principal exists
// (ErrAlreadyExists after), and needs no credentials. A retry (after ErrUnavailable) sends the same
// token, so it applies once.
func (c *Client) Bootstrap(ctx context.Context, principal string) (Token, error) {
	if principal == "" {
		return Token{}, invalidf("empty principal")
	}
	secret := NewTokenSecret()
	hdr, done := c.header()
	defer done()
	req := &dlockv1.AclBootstrapRequest{Header: hdr, Principal: principal, Token: secret}
	var resp *dlockv1.AclBootstrapResponse
	err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewAclClient(cc).Bootstrap(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return Token{}, err
	}
	return Token{Principal: principal, ID: resp.GetTokenId(), Secret: secret}, nil
}

// WhoAmI returns the caller's principal and rules as the answering node knows them.
func (c *Client) WhoAmI(ctx context.Context) (Identity, error) {
	var resp *dlockv1.WhoAmIResponse
	err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewAclClient(cc).WhoAmI(ctx, &dlockv1.WhoAmIRequest{})
		resp = r
		return err
	})
	if err != nil {
		return Identity{}, err
	}
	return Identity{AuthEnabled: resp.GetAuthEnabled(), Principal: resp.GetPrincipal(),
		AuthenticatedBy: resp.GetAuthenticatedBy(), Rules: rulesOf(resp.GetRules())}, nil
}

// AddPrincipal adds a principal without rules or tokens (admin). A principal that authenticates with a
// client certificate needs no token: its name is the certificate's Subject CommonName.
func (c *Client) AddPrincipal(ctx context.Context, name string) error {
	return c.aclWrite(ctx, func(ctx context.Context, acl dlockv1.AclClient, h *dlockv1.RequestHeader) error {
		_, err := acl.AddPrincipal(ctx, &dlockv1.AddPrincipalRequest{Header: h, Name: name})
		return err
	})
}

// RemovePrincipal removes a principal with its rules and tokens (admin). ErrLastAdmin if it is the
// last principal with the admin permission.
func (c *Client) RemovePrincipal(ctx context.Context, name string) error {
	return c.aclWrite(ctx, func(ctx context.Context, acl dlockv1.AclClient, h *dlockv1.RequestHeader) error {
		_, err := acl.RemovePrincipal(ctx, &dlockv1.RemovePrincipalRequest{Header: h, Name: name})
		return err
	})
}

// CreateToken creates a token for principal and returns it (admin). The secret is drawn here from
// crypto/rand; the cluster stores only its SHA-256, so it cannot be shown again.
func (c *Client) CreateToken(ctx context.Context, principal string) (Token, error) {
	secret := NewTokenSecret()
	var id string
	err := c.aclWrite(ctx, func(ctx context.Context, acl dlockv1.AclClient, h *dlockv1.RequestHeader) error {
		r, err := acl.CreateToken(ctx, &dlockv1.CreateTokenRequest{Header: h, Principal: principal, Token: secret})
		id = r.GetTokenId()
		return err
	})
	if err != nil {
		return Token{}, err
	}
	return Token{Principal: principal, ID: id, Secret: secret}, nil
}

// RevokeToken removes the token with this id (admin); calls carrying it fail with ErrUnauthenticated
// from then on.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.aclWrite(ctx, func(ctx context.Context, acl dlockv1.AclClient, h *dlockv1.RequestHeader) error {
		_, err := acl.RevokeToken(ctx, &dlockv1.RevokeTokenRequest{Header: h, TokenId: id})
		return err
	})
}

// Grant adds rule to principal (admin); granting a rule it has changes nothing.
func (c *Client) Grant(ctx context.Context, principal string, rule Rule) error {
	return c.aclWrite(ctx, func(ctx context.Context, acl dlockv1.AclClient, h *dlockv1.RequestHeader) error {
		_, err := acl.Grant(ctx, &dlockv1.GrantRequest{Header: h, Principal: principal,
			Rule: &dlockv1.Rule{Permission: rule.Permission, Prefix: rule.Prefix}})
		return err
	})
}

// Revoke removes rule from principal (admin); ErrNotFound if it has no such rule.
func (c *Client) Revoke(ctx context.Context, principal string, rule Rule) error {
	return c.aclWrite(ctx, func(ctx context.Context, acl dlockv1.AclClient, h *dlockv1.RequestHeader) error {
		_, err := acl.Revoke(ctx, &dlockv1.RevokeRequest{Header: h, Principal: principal,
			Rule: &dlockv1.Rule{Permission: rule.Permission, Prefix: rule.Prefix}})
		return err
	})
}

// Principals returns every principal, by name (admin). The read is linearizable unless Stale.
func (c *Client) Principals(ctx context.Context, opts ...ReadOption) ([]Principal, error) {
	req := &dlockv1.ListPrincipalsRequest{Stale: readOpts(opts).stale}
	var resp *dlockv1.ListPrincipalsResponse
	err := c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		r, err := dlockv1.NewAclClient(cc).ListPrincipals(ctx, req)
		resp = r
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Principal, 0, len(resp.GetPrincipals()))
	for _, p := range resp.GetPrincipals() {
		out = append(out, Principal{Name: p.GetName(), Rules: rulesOf(p.GetRules()), TokenIDs: p.GetTokenIds()})
	}
	return out, nil
}

// aclWrite runs one access control change with a fresh request header, retried like every write.
func (c *Client) aclWrite(ctx context.Context, fn func(context.Context, dlockv1.AclClient, *dlockv1.RequestHeader) error) error {
	hdr, done := c.header()
	defer done()
	return c.call(ctx, fixed(c.opts.callTimeout), func(ctx context.Context, cc *grpc.ClientConn) error {
		return fn(ctx, dlockv1.NewAclClient(cc), hdr)
	})
}

func rulesOf(rs []*dlockv1.Rule) []Rule {
	out := make([]Rule, 0, len(rs))
	for _, r := range rs {
		out = append(out, Rule{Permission: r.GetPermission(), Prefix: r.GetPrefix()})
	}
	return out
}
