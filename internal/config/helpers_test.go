package config

import (
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// errorKeys returns the Key of every *KeyError inside err, in order, unwrapping errors.Join and %w.
func errorKeys(err error) []string {
	var keys []string
	var walk func(error)
	walk = func(e error) {
		var ke *KeyError
		switch x := e.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range x.Unwrap() {
				walk(inner)
			}
		default:
			if errors.As(e, &ke) {
				keys = append(keys, ke.Key)
			}
		}
	}
	walk(err)
	return keys
}

// threeNodes is a valid 3-node configuration for node 1, the base that validation rows break.
func threeNodes() *Config {
	c := Default()
	c.ID = IDConfig{SelfID: 1, PeerIDs: []uint32{2, 3}}
	c.Network = NetworkConfig{
		SelfAddress:      "10.0.0.1:14005",
		SelfCliAddress:   "10.0.0.1:24005",
		PeerAddresses:    []string{"10.0.0.2:14005", "10.0.0.3:14005"},
		PeerCliAddresses: []string{"10.0.0.2:24005", "10.0.0.3:24005"},
	}
	return c
}
