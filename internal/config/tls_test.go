package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TLS is off unless a plane names its files; a plane names all three or
// none, and a missing one is reported by its key.
func TestTLSSection(t *testing.T) {
	for _, tt := range []struct {
		name     string
		give     string
		wantKeys []string
		want     TLSConfig
	}{
		{"absent: plaintext", "", nil, TLSConfig{}},
		{"both planes", `
tls:
  peer: {ca_file: ca.pem, cert_file: n.pem, key_file: n-key.pem}
  client: {ca_file: cca.pem, cert_file: n.pem, key_file: n-key.pem}
`, nil, TLSConfig{Peer: TLSFiles{"ca.pem", "n.pem", "n-key.pem"}, Client: TLSFiles{"cca.pem", "n.pem", "n-key.pem"}}},
		{"peer plane only", "tls: {peer: {ca_file: a, cert_file: b, key_file: c}}", nil,
			TLSConfig{Peer: TLSFiles{"a", "b", "c"}}},
		{"a plane without its key", "tls: {client: {ca_file: a, cert_file: b}}", []string{"tls.client.key_file"}, TLSConfig{}},
		{"a plane with only a CA", "tls: {peer: {ca_file: a}}", []string{"tls.peer.cert_file", "tls.peer.key_file"}, TLSConfig{}},
		{"a misspelt key", "tls: {peer: {ca: a}}", []string{"tls.peer.ca"}, TLSConfig{}},
		{"an unknown plane", "tls: {admin: {}}", []string{"tls.admin"}, TLSConfig{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.give))
			if got := errorKeys(err); !slices.Equal(got, tt.wantKeys) {
				t.Fatalf("error keys %v (%v), want %v", got, err, tt.wantKeys)
			}
			if err == nil && !reflect.DeepEqual(c.TLS, tt.want) {
				t.Fatalf("TLS = %+v, want %+v", c.TLS, tt.want)
			}
		})
	}
}

// A config with TLS renders and reads back, and one without renders no tls
// section at all, so generated files stay as they were.
func TestTLSRenders(t *testing.T) {
	c := threeNodes()
	plain, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), "tls") {
		t.Fatalf("a config without TLS renders a tls section:\n%s", plain)
	}
	c.TLS.Peer = TLSFiles{CAFile: "ca.pem", CertFile: "n.pem", KeyFile: "k.pem"}
	text, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(text)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, c)
	}
}
