package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Millis is a duration read from YAML either as an integer of milliseconds, the seed's form (50), or as a
// Go duration string ("150ms", "2s"). Anything else (a float, a bare number in quotes, "abc") is an error:
// guessing a unit for 1.5 or "50" would hide a mistake. Negative values parse, so that Validate can name
// the bound they break.
type Millis time.Duration

// maxMillis is the largest integer of milliseconds that fits in a time.Duration.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// Duration returns m as a time.Duration.
func (m Millis) Duration() time.Duration { return time.Duration(m) }

// String formats m as a Go duration, e.g. "150ms", the form error messages use.
func (m Millis) String() string { return time.Duration(m).String() }

// UnmarshalYAML reads an integer of milliseconds or a Go duration string. The error names the value but
// not the key; the decoder adds the key.
func (m *Millis) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errNotDuration(n)
	}
	switch n.ShortTag() {
	case "!!int":
		var ms int64
		if err := n.Decode(&ms); err != nil {
			return errNotDuration(n)
		}
		if ms > maxMillis || ms < -maxMillis {
			return fmt.Errorf("%s milliseconds is out of range (at most %d)", n.Value, maxMillis)
		}
		*m = Millis(time.Duration(ms) * time.Millisecond)
		return nil
	case "!!str":
		d, err := time.ParseDuration(strings.TrimSpace(n.Value))
		if err != nil {
			return errNotDuration(n)
		}
		*m = Millis(d)
		return nil
	}
	return errNotDuration(n)
}

func errNotDuration(n *yaml.Node) error {
	const want = `(want milliseconds or e.g. "50ms")`
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s is not a duration %s", kindName(n.Kind), want)
	}
	return fmt.Errorf("%q is not a duration %s", n.Value, want)
}

// MarshalYAML writes whole milliseconds as an integer, the seed's form, and anything finer as a Go
// duration string, so that marshalling and parsing again gives back the same value.
func (m Millis) MarshalYAML() (any, error) {
	d := time.Duration(m)
	if d%time.Millisecond == 0 {
		return int64(d / time.Millisecond), nil
	}
	return d.String(), nil
}

// kindName names a YAML node kind for error messages.
func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a value"
	}
	return "kind " + strconv.Itoa(int(k))
}
