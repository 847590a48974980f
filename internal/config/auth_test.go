package config

import (
	"slices"
	"testing"
)

// docs/config.md, "auth": off by default; on by one key; insecure tokens
// only with access control on.
func TestAuthKeys(t *testing.T) {
	if Default().Auth != (AuthConfig{}) {
		t.Fatalf("Default().Auth = %+v, want off", Default().Auth)
	}
	c, err := Parse([]byte("auth:\n  enabled: true\n  allow_insecure_tokens: true\n"))
	if err != nil || !c.Auth.Enabled || !c.Auth.AllowInsecureTokens {
		t.Fatalf("Parse(auth on) = %+v, %v", c, err)
	}
	_, err = Parse([]byte("auth:\n  allow_insecure_tokens: true\n"))
	if got := errorKeys(err); !slices.Equal(got, []string{"auth.allow_insecure_tokens"}) {
		t.Fatalf("insecure tokens without auth: keys %v (%v), want auth.allow_insecure_tokens", got, err)
	}
	_, err = Parse([]byte("auth:\n  enable: true\n"))
	if got := errorKeys(err); !slices.Equal(got, []string{"auth.enable"}) {
		t.Fatalf("misspelt key: keys %v (%v), want auth.enable", got, err)
	}
}
