package cli_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dlock-raft/dlock/client/clienttest"
	"github.com/dlock-raft/dlock/internal/cli"
)

// docs/cli.md, "Common flags": the TLS flags are checked before anything is
// sent, and a mistake in them is a usage error, from a flag or from the
// environment.
func TestTLSFlagMistakesAreUsageErrors(t *testing.T) {
	s := clienttest.NewServer(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"--cert without --key", nil, []string{"--cert", garbage}},
		{"--key without --cert", nil, []string{"--key", garbage}},
		{"a missing CA file", nil, []string{"--cacert", filepath.Join(dir, "none.pem")}},
		{"a CA file without a certificate", nil, []string{"--cacert", garbage}},
		{"a certificate that does not parse", nil, []string{"--cert", garbage, "--key", garbage}},
		{"$DLOCK_CERT without $DLOCK_KEY", map[string]string{cli.EnvCert: garbage}, nil},
		{"a missing $DLOCK_CACERT", map[string]string{cli.EnvCACert: filepath.Join(dir, "none.pem")}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"kv", "put", "k", "v", "--endpoints", s.Addr()}, tt.args...)
			if _, code := dlock(t, "", args...); code != 2 {
				t.Fatalf("exit %d, want 2 (usage)", code)
			}
		})
	}
	if _, code := dlock(t, "", "kv", "get", "k", "--endpoints", s.Addr()); code != 3 {
		t.Fatalf("kv get k after the refused puts: exit %d, want 3 (not found): nothing was sent", code)
	}
}
