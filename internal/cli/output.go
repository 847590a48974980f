package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/dlock-raft/dlock/client"
)

// printer writes results as text (aligned "key: value" lines and tables) or as indented JSON.
type printer struct {
	w    io.Writer
	json bool
}

// emit writes v as JSON, or calls text with an aligning writer.
func (p printer) emit(v any, text func(w io.Writer)) error {
	if p.json {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

// field writes one aligned "key: value" line.
func field(w io.Writer, key string, value any) { fmt.Fprintf(w, "%s:\t%v\n", key, value) }

type holdJSON struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
	Token uint64 `json:"token"`
	Nonce uint64 `json:"nonce"`
	TTLMs int64  `json:"ttl_ms"`
}

func (p printer) hold(h holdJSON) error {
	return p.emit(h, func(w io.Writer) {
		field(w, "name", h.Name)
		field(w, "owner", h.Owner)
		field(w, "token", h.Token)
		field(w, "nonce", h.Nonce)
		field(w, "ttl", time.Duration(h.TTLMs)*time.Millisecond)
	})
}

func (p printer) released(name, owner string) error {
	v := struct {
		Name     string `json:"name"`
		Owner    string `json:"owner"`
		Released bool   `json:"released"`
	}{name, owner, true}
	return p.emit(v, func(w io.Writer) { fmt.Fprintf(w, "released %s\n", name) })
}

func (p printer) renewed(name, owner string, lease time.Duration) error {
	v := struct {
		Name  string `json:"name"`
		Owner string `json:"owner"`
		TTLMs int64  `json:"ttl_ms"`
	}{name, owner, lease.Milliseconds()}
	return p.emit(v, func(w io.Writer) { fmt.Fprintf(w, "renewed %s for %s\n", name, lease) })
}

type lockJSON struct {
	Name        string `json:"name"`
	Held        bool   `json:"held"`
	Owner       string `json:"owner"`
	Token       uint64 `json:"token"`
	Nonce       uint64 `json:"nonce"`
	TTLMs       int64  `json:"ttl_ms"`
	RemainingMs int64  `json:"remaining_ms"`
	Acquired    string `json:"acquired,omitempty"` // RFC 3339, the leader's wall clock at the last grant
	Waiters     int    `json:"waiters"`
}

func toLockJSON(i client.LockInfo) lockJSON {
	j := lockJSON{Name: i.Name, Held: i.Held(), Owner: i.Owner, Token: i.Token, Nonce: i.Nonce,
		TTLMs: i.TTL.Milliseconds(), RemainingMs: i.Remaining.Milliseconds(), Waiters: i.Waiters}
	if !i.Acquired.IsZero() {
		j.Acquired = i.Acquired.UTC().Format(time.RFC3339Nano)
	}
	return j
}

// ownerText shows a free lock's empty owner as "-".
func ownerText(owner string) string {
	if owner == "" {
		return "-"
	}
	return owner
}

func (p printer) lock(i client.LockInfo) error {
	j := toLockJSON(i)
	return p.emit(j, func(w io.Writer) {
		field(w, "name", j.Name)
		field(w, "owner", ownerText(j.Owner))
		field(w, "token", j.Token)
		field(w, "nonce", j.Nonce)
		field(w, "ttl", i.TTL)
		field(w, "remaining", i.Remaining)
		field(w, "acquired", j.Acquired)
		field(w, "waiters", j.Waiters)
	})
}

func (p printer) locks(infos []client.LockInfo) error {
	js := make([]lockJSON, 0, len(infos))
	for _, i := range infos {
		js = append(js, toLockJSON(i))
	}
	return p.emit(js, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tOWNER\tTOKEN\tNONCE\tTTL\tREMAINING\tWAITERS")
		for _, i := range infos {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%d\n", i.Name, ownerText(i.Owner), i.Token, i.Nonce, i.TTL,
				i.Remaining, i.Waiters)
		}
	})
}

func (p printer) put(key string, created bool) error {
	v := struct {
		Key     string `json:"key"`
		Created bool   `json:"created"`
	}{key, created}
	verb := "updated"
	if created {
		verb = "created"
	}
	return p.emit(v, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", verb, key) })
}

// value prints the value as is, then a newline (text), or as JSON with the bytes in base64 and, when
// they are valid UTF-8, as a string too.
func (p printer) value(key string, v []byte) error {
	j := struct {
		Key         string  `json:"key"`
		Value       *string `json:"value,omitempty"`
		ValueBase64 string  `json:"value_base64"`
	}{Key: key, ValueBase64: base64.StdEncoding.EncodeToString(v)}
	if utf8.Valid(v) {
		s := string(v)
		j.Value = &s
	}
	if p.json {
		return p.emit(j, nil)
	}
	_, err := fmt.Fprintf(p.w, "%s\n", v)
	return err
}

func (p printer) deleted(key string) error {
	v := struct {
		Key     string `json:"key"`
		Deleted bool   `json:"deleted"`
	}{key, true}
	return p.emit(v, func(w io.Writer) { fmt.Fprintf(w, "deleted %s\n", key) })
}

func (p printer) keys(keys []string) error {
	if keys == nil {
		keys = []string{}
	}
	return p.emit(keys, func(w io.Writer) {
		for _, k := range keys {
			fmt.Fprintln(w, k)
		}
	})
}

type memberJSON struct {
	ID            uint32 `json:"id"`
	PeerAddress   string `json:"peer_address"`
	ClientAddress string `json:"client_address"`
	Voter         bool   `json:"voter"`
	Leader        bool   `json:"leader"`
}

func (p printer) status(s client.Status) error {
	members := make([]memberJSON, 0, len(s.Members))
	for _, m := range s.Members {
		members = append(members, memberJSON{m.ID, m.PeerAddress, m.ClientAddress, m.Voter, m.Leader})
	}
	j := struct {
		Endpoint     string       `json:"endpoint"`
		NodeID       uint32       `json:"node_id"`
		State        string       `json:"state"`
		LeaderID     uint32       `json:"leader_id"`
		Term         uint64       `json:"term"`
		CommitIndex  uint64       `json:"commit_index"`
		AppliedIndex uint64       `json:"applied_index"`
		Ready        bool         `json:"ready"`
		Members      []memberJSON `json:"members"`
	}{s.Endpoint, s.NodeID, s.State, s.LeaderID, s.Term, s.CommitIndex, s.AppliedIndex, s.Ready, members}
	return p.emit(j, func(w io.Writer) {
		field(w, "endpoint", s.Endpoint)
		field(w, "node", s.NodeID)
		field(w, "state", s.State)
		field(w, "leader", s.LeaderID)
		field(w, "term", s.Term)
		field(w, "commit index", s.CommitIndex)
		field(w, "applied index", s.AppliedIndex)
		field(w, "ready", s.Ready)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "ID\tSUFFRAGE\tLEADER\tPEER ADDRESS\tCLIENT ADDRESS")
		for _, m := range s.Members {
			suffrage := "voter"
			if !m.Voter {
				suffrage = "nonvoter"
			}
			fmt.Fprintf(w, "%d\t%s\t%v\t%s\t%s\n", m.ID, suffrage, m.Leader, m.PeerAddress, m.ClientAddress)
		}
	})
}

func (p printer) transferred(leader uint32) error {
	v := struct {
		LeaderID uint32 `json:"leader_id"`
	}{leader}
	return p.emit(v, func(w io.Writer) { fmt.Fprintf(w, "leader is now node %d\n", leader) })
}
