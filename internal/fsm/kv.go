package fsm

import (
	"bytes"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// put sets key to a copy of the value; created tells whether key is new.
func (s *State) put(p *fsmpb.Put) *fsmpb.Result {
	if r := firstProblem(checkID("key", p.GetKey(), s.limits.NameBytesMax), s.checkValue(p.GetValue())); r != nil {
		return r
	}
	_, exists := s.kv[p.GetKey()]
	if !exists && len(s.kv) >= s.limits.KeysMax {
		return overLimit("%d keys, the limit", s.limits.KeysMax)
	}
	s.kv[p.GetKey()] = bytes.Clone(p.GetValue())
	if !exists {
		mustf(s.keyNames.insert(p.GetKey()), "key %q indexed twice", p.GetKey())
	}
	return &fsmpb.Result{Code: fsmpb.Code_OK, Created: !exists}
}

func (s *State) checkValue(v []byte) *fsmpb.Result {
	if len(v) > s.limits.ValueBytesMax {
		return overLimit("value is %d bytes, over the limit of %d", len(v), s.limits.ValueBytesMax)
	}
	return nil
}

// del deletes key; a missing key is NOT_FOUND.
func (s *State) del(d *fsmpb.Delete) *fsmpb.Result {
	if r := checkID("key", d.GetKey(), s.limits.NameBytesMax); r != nil {
		return r
	}
	if _, ok := s.kv[d.GetKey()]; !ok {
		return refuse(fsmpb.Code_NOT_FOUND, "key %q not found", d.GetKey())
	}
	delete(s.kv, d.GetKey())
	mustf(s.keyNames.remove(d.GetKey()), "key %q missing from the key index", d.GetKey())
	return &fsmpb.Result{Code: fsmpb.Code_OK}
}

// Get returns a copy of key's value.
func (s *State) Get(key string) ([]byte, bool) {
	v, ok := s.kv[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(v), true
}

// Keys returns up to limit records whose key starts with prefix and sorts
// after startAfter, in ascending key order, and whether more exist. Values
// are copies, or nil when keysOnly. A limit <= 0 returns no records.
func (s *State) Keys(prefix, startAfter string, limit int, keysOnly bool) ([]*fsmpb.KVRecord, bool) {
	keys, more := s.keyNames.page(prefix, startAfter, limit)
	out := make([]*fsmpb.KVRecord, len(keys))
	for i, k := range keys {
		out[i] = &fsmpb.KVRecord{Key: k}
		if !keysOnly {
			out[i].Value = bytes.Clone(s.kv[k])
		}
	}
	return out, more
}
