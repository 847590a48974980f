package config

// AuthConfig turns access control on for the client plane (docs/security.md (Access control)). Off by default: every
// client may do everything, as before access control existed. The peer plane is not covered (mutual TLS
// protects it). Every node of a cluster must use the same setting: the node a client reaches decides
// whether it must authenticate.
type AuthConfig struct {
	// Enabled makes every client request authenticate, with a bearer token (gRPC metadata
	// "authorization: Bearer <token>") or a verified TLS client certificate whose Subject CommonName names
	// the principal, and be permitted by the principal's rules. Unauthenticated requests get
	// Unauthenticated; requests no rule permits get PermissionDenied; neither changes anything. Until
	// `dlock acl bootstrap` creates the first principal, only Bootstrap, Status and health checks
	// succeed.
	// Default false.
	Enabled bool `yaml:"enabled"`
	// AllowInsecureTokens accepts bearer tokens on connections without TLS. WARNING: a token sent in
	// plaintext can be read by anyone on the network path and replayed until it is revoked; use it only
	// on a trusted network (loopback, a private overlay) or behind a TLS-terminating proxy. Default
	// false: a token on a plaintext connection is refused (Unauthenticated) without being looked up.
	AllowInsecureTokens bool `yaml:"allow_insecure_tokens"`
}

func (c *Config) validateAuth(p *problems) {
	if c.Auth.AllowInsecureTokens && !c.Auth.Enabled {
		p.add("auth.allow_insecure_tokens", "true, but auth.enabled is false; turn access control on or drop the key")
	}
}
