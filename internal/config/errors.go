package config

import "fmt"

// KeyError is one problem with one YAML key. Parse, Load and Validate return every problem they find
// joined with errors.Join; callers that need the keys (tests, a config linter) find each KeyError by
// unwrapping, never by reading the message.
type KeyError struct {
	// Key is the full YAML path of the offending key, e.g. "id.peer_id[1]" or
	// "parameters.heart_beat_interval". It is empty only for a problem with the file as a whole.
	Key string
	// Msg says what is wrong: the value as written or parsed, and the bound it breaks.
	Msg string
}

// Error returns "key: msg", the form users see.
func (e *KeyError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// problems collects KeyErrors so that one pass reports everything wrong, not just the first thing.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
}
