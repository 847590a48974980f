package config

import (
	"bytes"
	"slices"
	"testing"
)

// "id.join makes a node with no Raft state wait to be added; it names the
// members of the cluster it joins."
func TestJoinNeedsPeers(t *testing.T) {
	c := Default()
	c.ID.Join = true
	if got := errorKeys(c.Validate()); !slices.Equal(got, []string{"id.join"}) {
		t.Errorf("join without peers: error keys %q, want [id.join]", got)
	}
	c = threeNodes()
	c.ID.Join = true
	if err := c.Validate(); err != nil {
		t.Errorf("join with peers: %v, want nil", err)
	}
}

// A file sets id.join; rendering keeps it, and leaves it out when false so
// that files written before it existed render as they did.
func TestJoinReadsAndRenders(t *testing.T) {
	c := threeNodes()
	c.ID.Join = true
	text, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(text)
	if err != nil || !back.ID.Join {
		t.Fatalf("Parse(Render()) of a joining node: join %v, err %v; want true, nil", back != nil && back.ID.Join, err)
	}
	plain, err := threeNodes().Render()
	if err != nil || bytes.Contains(plain, []byte("join")) {
		t.Errorf("Render() of a node without join = %q, %v; want no join key", plain, err)
	}
}

func TestCheckDialAddress(t *testing.T) {
	tests := []struct {
		give    string
		wantErr bool
	}{
		{"10.0.0.4:14005", false},
		{"node4.dlock.internal:14005", false},
		{"[fd00::4]:14005", false},
		{"", true},
		{"10.0.0.4", true},
		{":14005", true},
		{"0.0.0.0:14005", true},
		{"[::]:14005", true},
		{"10.0.0.4:0", true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			err := CheckDialAddress("peer_address", tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CheckDialAddress(%q) = %v; want an error: %v", tt.give, err, tt.wantErr)
			}
			if err != nil && !slices.Equal(errorKeys(err), []string{"peer_address"}) {
				t.Fatalf("CheckDialAddress(%q) = %v; want it to name peer_address", tt.give, err)
			}
		})
	}
}
