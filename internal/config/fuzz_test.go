package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: Parse of arbitrary bytes never panics. A refusal is a list of
// *KeyError (each naming its key unless the file as a whole is wrong) or one
// YAML syntax error. A Config it accepts is valid, answers every derived
// question, and survives Render: parsing the rendered file gives an equal
// Config, which renders to the same bytes.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "seed", "*.yaml"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("seed configs: %v, %d files", err, len(seeds))
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	rendered, err := threeNodes().Render()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"",
		string(rendered),
		"id: {self_id: 1, peer_id: [2, 0]}\nnetwork: {peer_address: [a:1, b:1], peer_cli_address: [a:2, b:2]}",
		"parameters:\n  heart_beat_interval: 1.5s\n  snapshot_interval: 9223372036854\nlimits: {lease_max: 720h}\n",
		"storage: &s {log_path: \"./var/\"}\nlimits: *s\n",
		"network:\n  advertise_address: \"[::1]:14005\"\n  self_address: \":14005\"\n",
		"id:\n  self_id: 1\n---\nid:\n  self_id: 2\n",
		"- id\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a Config that Validate refuses: %v", err)
		}
		_, _, _, _, _ = c.Members(), c.RaftTiming(), c.LogStorePath(), c.LogFile(), c.SlogLevel()
		text, err := c.Render()
		if err != nil {
			t.Fatalf("Render of a parsed Config: %v", err)
		}
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse of the rendered Config: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("render round trip:\n got  %+v\n want %+v\n%s", again, c, text)
		}
		if text2, err := again.Render(); err != nil || string(text2) != string(text) {
			t.Fatalf("render is not stable: %v\n got  %s\n want %s", err, text2, text)
		}
	})
}

// checkRefusal checks the shape Parse documents for its errors: every
// problem a *KeyError with a message, or a single YAML syntax error.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
			return
		}
		leaves = append(leaves, e)
	}
	walk(err)
	for _, e := range leaves {
		var ke *KeyError
		switch {
		case errors.As(e, &ke):
			if strings.TrimSpace(ke.Msg) == "" {
				t.Fatalf("key %q refused without a message", ke.Key)
			}
		case len(leaves) == 1 && strings.HasPrefix(e.Error(), "parse YAML: "):
		default:
			t.Fatalf("refusal %q (%T) is neither a *KeyError nor a YAML syntax error; all: %v", e, e, err)
		}
	}
}
