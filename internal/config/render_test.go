package config

import (
	"reflect"
	"testing"
)

// What Render writes, Parse reads back to an equal Config, for every
// member of a cluster.
func TestRenderRoundTrips(t *testing.T) {
	members := []Member{
		{ID: 1, PeerAddress: "10.0.0.1:14005", ClientAddress: "10.0.0.1:24005"},
		{ID: 2, PeerAddress: "10.0.0.2:14005", ClientAddress: "10.0.0.2:24005"},
		{ID: 3, PeerAddress: "10.0.0.3:14005", ClientAddress: "10.0.0.3:24005"},
	}
	base := Default()
	base.Storage.DataDir = "var"
	for _, m := range members {
		give := base.ForMember(m.ID, members)
		text, err := give.Render()
		if err != nil {
			t.Fatalf("render node %d: %v", m.ID, err)
		}
		got, err := Parse(text)
		if err != nil {
			t.Fatalf("parse rendered node %d: %v\n%s", m.ID, err, text)
		}
		if !reflect.DeepEqual(got, give) {
			t.Fatalf("node %d round trip:\n got  %+v\n want %+v", m.ID, got, give)
		}
		if !reflect.DeepEqual(got.Members(), members) {
			t.Fatalf("node %d members = %+v, want %+v", m.ID, got.Members(), members)
		}
	}
}

// Render refuses an invalid Config instead of writing a file no node reads.
func TestRenderRefusesInvalid(t *testing.T) {
	c := Default()
	c.ID.SelfID = 0
	if _, err := c.Render(); err == nil {
		t.Fatal("Render of self_id 0 succeeded, want the validation error")
	}
}
