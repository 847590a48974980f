package check

import (
	"fmt"

	"github.com/anishathalye/porcupine"

	"github.com/dlock-raft/dlock/internal/history"
)

// KV checks that the put, get and delete ops of a history are linearizable
// against a map, one key at a time. Other kinds are ignored. See the package
// doc for what it assumes.
func KV(ops []history.Op, opt LinOptions) Result {
	return linearize("kv", kvModel(), kvParts(ops), opt)
}

// kvInput is what a KV op asked.
type kvInput struct {
	kind  history.Kind
	value string // put
}

// kvOutput is what a KV op was told. unknown: the op may have taken effect
// or not; refused: it surely did not (delete: the key was absent).
type kvOutput struct {
	outcome history.Outcome
	found   bool
	value   string
}

// kvState is one key. A value type, so states compare with ==.
type kvState struct {
	present bool
	value   string
	done    bool // past the end of the history: see endOfHistory
}

func kvModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{kvState{}} },
		Step: func(st, in, out any) []any {
			s := st.(kvState)
			switch {
			case s.done:
				return []any{s}
			case in == (endOfHistory{}):
				s.done = true
				return []any{s}
			}
			return kvStep(s, in.(kvInput), out.(kvOutput))
		},
		Hash: func(st any) uint64 {
			s := st.(kvState)
			return uint64(newHash().flag(s.present).str(s.value).flag(s.done))
		},
		DescribeOperation: func(in, out any) string {
			if in == (endOfHistory{}) {
				return "end"
			}
			i, o := in.(kvInput), out.(kvOutput)
			switch {
			case i.kind == history.Put:
				return fmt.Sprintf("put(%q) %s", i.value, o.outcome)
			case i.kind == history.Get && !o.found:
				return "get() absent"
			case i.kind == history.Get:
				return fmt.Sprintf("get() %q", o.value)
			}
			return fmt.Sprintf("delete() %s", o.outcome)
		},
		DescribeState: func(st any) string {
			if s := st.(kvState); s.done {
				return "end"
			} else if s.present {
				return fmt.Sprintf("%q", s.value)
			}
			return "absent"
		},
	}
	return nm.ToModel()
}

// kvStep returns the states the key can be in after the op, none if the
// op cannot have been told what it was told in state s. An unanswered op
// takes effect here: its having none is placing it after endOfHistory.
func kvStep(s kvState, in kvInput, out kvOutput) []any {
	switch in.kind {
	case history.Put:
		return []any{kvState{present: true, value: in.value}}
	case history.Get:
		if out.found == s.present && (!out.found || out.value == s.value) {
			return []any{s}
		}
		return nil
	case history.Delete:
		// Deleting an absent key may be recorded as OK, or as Refused
		// (the server's NOT_FOUND): then the key must have been absent.
		if out.outcome != history.Refused {
			return []any{kvState{}}
		}
		if s.present {
			return nil
		}
		return []any{s}
	}
	return nil
}

// kvParts turns the KV ops into porcupine operations, one partition per
// key. Ops that cannot matter are left out, which keeps the search small:
// refused puts and unanswered reads. An unanswered put is left out when no
// read saw its value (having no effect explains the history at least as
// well as having one), and is made an OK put that returned by the first
// read of its value when its value is unique among the key's puts (it took
// effect, and before that read).
func kvParts(ops []history.Op) []part {
	inf := never(ops)
	readAt := map[[2]string]int64{} // key, value -> earliest return of a read of it
	puts := map[[2]string]int{}     // key, value -> puts writing it
	for _, op := range ops {
		kv := [2]string{op.Name, op.ResValue}
		switch {
		case op.Kind == history.Get && op.Outcome == history.OK && op.ResFound:
			if t, ok := readAt[kv]; !ok || int64(op.Return) < t {
				readAt[kv] = int64(op.Return)
			}
		case op.Kind == history.Put:
			puts[[2]string{op.Name, op.Value}]++
		}
	}
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		in := kvInput{kind: op.Kind, value: op.Value}
		out := kvOutput{outcome: op.Outcome, found: op.ResFound, value: op.ResValue}
		ret := int64(op.Return)
		switch op.Kind {
		case history.Put:
			if op.Outcome == history.Refused {
				continue
			}
			if op.Outcome == history.Unknown {
				seen, read := readAt[[2]string{op.Name, op.Value}]
				switch {
				case !read:
					continue
				case puts[[2]string{op.Name, op.Value}] == 1:
					out.outcome, ret = history.OK, max(seen, int64(op.Invoke))
				default:
					ret = inf
				}
			}
		case history.Get:
			if op.Outcome == history.Unknown {
				continue
			}
			// A Refused get can only mean NotFound.
			out.found = out.found && op.Outcome == history.OK
		case history.Delete:
			if op.Outcome == history.Unknown {
				ret = inf
			}
		default:
			continue
		}
		byKey[op.Name] = append(byKey[op.Name], operation(op, in, out, ret))
	}
	return partitions(byKey, inf)
}
