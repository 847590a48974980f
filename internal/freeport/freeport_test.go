package freeport

import "testing"

// Many probes in a row on one host never hand out an address twice, though the kernel may offer a
// just-closed port again.
func TestAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 500 {
		a := Addr(t, "127.0.0.1")
		if seen[a] {
			t.Fatalf("address %s handed out twice", a)
		}
		seen[a] = true
	}
	if p := Port(t); p <= 0 || p > 65535 {
		t.Fatalf("Port() = %d, want 1..65535", p)
	}
}
