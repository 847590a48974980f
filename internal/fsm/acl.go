package fsm

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// Access control: principals, each with rules and tokens. The state machine
// stores them, applies the commands that change them, and checks every
// command that names a principal (Command.principal) against them, so a
// write is permitted by the rules in force at the point of the log where it
// applies: a revocation committed before it is never missed.
//
// A rule grants one permission on every lock name and key that starts with
// its prefix. ADMIN grants everything on every name. Tokens are stored as
// SHA-256 hashes only; the node hashes what a client presents and asks
// TokenPrincipal.

// Bounds of access control, fixed so that every replica agrees.
const (
	// PrincipalsMax bounds the principals.
	PrincipalsMax = 4096
	// RulesPerPrincipalMax bounds one principal's rules.
	RulesPerPrincipalMax = 128
	// TokensPerPrincipalMax bounds one principal's tokens.
	TokensPerPrincipalMax = 16
	// TokenHashBytes is the size of a token hash (SHA-256).
	TokenHashBytes = 32
	// tokenIDBytes is how much of a token's hash its id shows.
	tokenIDBytes = 8
)

// principal is one access control principal. Its slices are replaced, never
// modified in place, so a Clone may share them.
type principal struct {
	name   string
	rules  []rule     // ascending (permission, prefix), no duplicates
	tokens [][32]byte // ascending, no duplicates
}

type rule struct {
	perm   fsmpb.Permission
	prefix string
}

func ruleCompare(a, b rule) int {
	return cmp.Or(cmp.Compare(a.perm, b.perm), cmp.Compare(a.prefix, b.prefix))
}

// covers reports whether r grants perm on name.
func (r rule) covers(perm fsmpb.Permission, name string) bool {
	return r.perm == fsmpb.Permission_ADMIN || (r.perm == perm && strings.HasPrefix(name, r.prefix))
}

// Rule is a copy of one access rule.
type Rule struct {
	Permission fsmpb.Permission
	Prefix     string
}

// PrincipalView is a copy of one principal: its rules in (permission,
// prefix) order and the ids of its tokens in ascending order.
type PrincipalView struct {
	Name     string
	Rules    []Rule
	TokenIDs []string
}

// TokenID returns the public id of the token with this hash: the hex of its
// first 8 bytes.
func TokenID(hash [32]byte) string { return hex.EncodeToString(hash[:tokenIDBytes]) }

// AccessControlled reports whether any principal exists (access control has
// been bootstrapped).
func (s *State) AccessControlled() bool { return len(s.principals) > 0 }

// TokenPrincipal returns the principal that owns the token with this hash.
func (s *State) TokenPrincipal(hash [32]byte) (string, bool) {
	p, ok := s.tokens[hash]
	return p, ok
}

// Allowed reports whether principal may use perm on name (a lock name or a
// key). An unknown principal may do nothing.
func (s *State) Allowed(principal string, perm fsmpb.Permission, name string) bool {
	p := s.principals[principal]
	if p == nil {
		return false
	}
	for _, r := range p.rules {
		if r.covers(perm, name) {
			return true
		}
	}
	return false
}

// AllowedPrefix reports whether principal may use perm on every name that
// starts with prefix: a rule's prefix must be a prefix of it.
func (s *State) AllowedPrefix(principal string, perm fsmpb.Permission, prefix string) bool {
	return s.Allowed(principal, perm, prefix)
}

// Principal returns a copy of the named principal.
func (s *State) Principal(name string) (PrincipalView, bool) {
	p := s.principals[name]
	if p == nil {
		return PrincipalView{}, false
	}
	return p.view(), true
}

// Principals returns copies of every principal, by name.
func (s *State) Principals() []PrincipalView {
	out := make([]PrincipalView, 0, len(s.principals))
	for _, name := range slices.Sorted(maps.Keys(s.principals)) {
		out = append(out, s.principals[name].view())
	}
	return out
}

func (p *principal) view() PrincipalView {
	v := PrincipalView{Name: p.name, Rules: make([]Rule, len(p.rules)), TokenIDs: make([]string, len(p.tokens))}
	for i, r := range p.rules {
		v.Rules[i] = Rule{Permission: r.perm, Prefix: r.prefix}
	}
	for i, h := range p.tokens {
		v.TokenIDs[i] = TokenID(h)
	}
	return v
}

// required returns the permission a command needs, and the name it needs it on.
func required(c *fsmpb.Command) (fsmpb.Permission, string) {
	switch op := c.Op.(type) {
	case *fsmpb.Command_Acquire:
		return fsmpb.Permission_LOCK, op.Acquire.GetName()
	case *fsmpb.Command_Renew:
		return fsmpb.Permission_LOCK, op.Renew.GetName()
	case *fsmpb.Command_Release:
		return fsmpb.Permission_LOCK, op.Release.GetName()
	case *fsmpb.Command_Withdraw:
		return fsmpb.Permission_LOCK, op.Withdraw.GetName()
	case *fsmpb.Command_Put:
		return fsmpb.Permission_WRITE, op.Put.GetKey()
	case *fsmpb.Command_Delete:
		return fsmpb.Permission_WRITE, op.Delete.GetKey()
	}
	return fsmpb.Permission_ADMIN, ""
}

// authorize refuses a command whose principal may not apply it. Bootstrap
// needs no permission: it applies only while no principal exists.
func (s *State) authorize(c *fsmpb.Command) *fsmpb.Result {
	if _, ok := c.Op.(*fsmpb.Command_AclBootstrap); ok {
		return nil
	}
	if _, ok := s.principals[c.Principal]; !ok {
		return refuse(fsmpb.Code_DENIED, "principal %q is not known", c.Principal)
	}
	perm, name := required(c)
	if !s.Allowed(c.Principal, perm, name) {
		if perm == fsmpb.Permission_ADMIN {
			return refuse(fsmpb.Code_DENIED, "principal %q lacks the admin permission", c.Principal)
		}
		return refuse(fsmpb.Code_DENIED, "principal %q lacks the %s permission on %q",
			c.Principal, permName(perm), name)
	}
	return nil
}

// deniedOrReplay answers a command its principal may not apply: with the
// remembered result if the command is a retry of one applied earlier (its
// outcome stands: it was permitted when it applied), else with denied.
// Nothing is applied; a retried acquire only takes over its request's
// claim, as every replay of an acquire does (see replay).
func (s *State) deniedOrReplay(c *fsmpb.Command, denied *fsmpb.Result) *fsmpb.Result {
	if c.ClientId == "" || c.Seq == 0 || !dedupable(c) {
		return denied
	}
	cl := s.clients[c.ClientId]
	r := cl.lookup(c.Seq)
	if r == nil {
		return denied
	}
	return s.replay(cl, c, r)
}

// permName is a permission's lower-case name, as users write it.
func permName(p fsmpb.Permission) string { return strings.ToLower(p.String()) }

func (s *State) checkPrincipalName(v string) *fsmpb.Result {
	return checkID("principal", v, s.limits.OwnerBytesMax)
}

func checkTokenHash(h []byte) ([32]byte, *fsmpb.Result) {
	var out [32]byte
	if len(h) != TokenHashBytes {
		return out, invalid("token hash is %d bytes, want %d", len(h), TokenHashBytes)
	}
	copy(out[:], h)
	return out, nil
}

func (s *State) aclBootstrap(b *fsmpb.AclBootstrap) *fsmpb.Result {
	hash, bad := checkTokenHash(b.GetTokenHash())
	if r := firstProblem(s.checkPrincipalName(b.GetPrincipal()), bad); r != nil {
		return r
	}
	if len(s.principals) > 0 {
		return refuse(fsmpb.Code_EXISTS, "access control is bootstrapped already: %d principals exist", len(s.principals))
	}
	p := &principal{name: b.GetPrincipal(), rules: []rule{{perm: fsmpb.Permission_ADMIN}}, tokens: [][32]byte{hash}}
	s.principals[p.name] = p
	s.tokens[hash] = p.name
	return &fsmpb.Result{Code: fsmpb.Code_OK}
}

func (s *State) aclAddPrincipal(a *fsmpb.AclPrincipal) *fsmpb.Result {
	if r := s.checkPrincipalName(a.GetName()); r != nil {
		return r
	}
	if _, ok := s.principals[a.GetName()]; ok {
		return refuse(fsmpb.Code_EXISTS, "principal %q exists already", a.GetName())
	}
	if len(s.principals) >= PrincipalsMax {
		return overLimit("%d principals, the limit", PrincipalsMax)
	}
	s.principals[a.GetName()] = &principal{name: a.GetName()}
	return &fsmpb.Result{Code: fsmpb.Code_OK}
}

func (s *State) aclRemovePrincipal(a *fsmpb.AclPrincipal) *fsmpb.Result {
	p, r := s.knownPrincipal(a.GetName())
	if r != nil {
		return r
	}
	if s.lastAdmin(p) {
		return refuse(fsmpb.Code_LAST_ADMIN, "principal %q is the last with the admin permission; removing it would leave nobody to manage access", p.name)
	}
	for _, h := range p.tokens {
		delete(s.tokens, h)
	}
	delete(s.principals, p.name)
	return &fsmpb.Result{Code: fsmpb.Code_OK}
}

func (s *State) knownPrincipal(name string) (*principal, *fsmpb.Result) {
	if r := s.checkPrincipalName(name); r != nil {
		return nil, r
	}
	p := s.principals[name]
	if p == nil {
		return nil, refuse(fsmpb.Code_NOT_FOUND, "principal %q not found", name)
	}
	return p, nil
}

// lastAdmin reports whether p holds the admin permission and no other
// principal does.
func (s *State) lastAdmin(p *principal) bool {
	admin := rule{perm: fsmpb.Permission_ADMIN}
	if !slices.Contains(p.rules, admin) {
		return false
	}
	for _, o := range s.principals {
		if o != p && slices.Contains(o.rules, admin) {
			return false
		}
	}
	return true
}

func (s *State) aclAddToken(t *fsmpb.AclToken) *fsmpb.Result {
	hash, bad := checkTokenHash(t.GetTokenHash())
	if r := firstProblem(s.checkPrincipalName(t.GetPrincipal()), bad); r != nil {
		return r
	}
	p, r := s.knownPrincipal(t.GetPrincipal())
	if r != nil {
		return r
	}
	if _, dup := s.tokens[hash]; dup {
		return refuse(fsmpb.Code_EXISTS, "token %s exists already", TokenID(hash))
	}
	if len(p.tokens) >= TokensPerPrincipalMax {
		return overLimit("principal %q has %d tokens, the limit", p.name, TokensPerPrincipalMax)
	}
	tokens := append(slices.Clone(p.tokens), hash)
	slices.SortFunc(tokens, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	p.tokens = tokens
	s.tokens[hash] = p.name
	return &fsmpb.Result{Code: fsmpb.Code_OK}
}

func (s *State) aclRemoveToken(t *fsmpb.AclToken) *fsmpb.Result {
	id := t.GetTokenId()
	if len(id) != 2*tokenIDBytes {
		return invalid("token id %q: want %d hex digits", id, 2*tokenIDBytes)
	}
	for _, name := range slices.Sorted(maps.Keys(s.principals)) {
		p := s.principals[name]
		i := slices.IndexFunc(p.tokens, func(h [32]byte) bool { return TokenID(h) == id })
		if i < 0 {
			continue
		}
		delete(s.tokens, p.tokens[i])
		p.tokens = slices.Delete(slices.Clone(p.tokens), i, i+1)
		return &fsmpb.Result{Code: fsmpb.Code_OK}
	}
	return refuse(fsmpb.Code_NOT_FOUND, "token %s not found", id)
}

func (s *State) checkRule(a *fsmpb.AclRule) (*principal, rule, *fsmpb.Result) {
	perm := a.GetPermission()
	r := rule{perm: perm, prefix: a.GetPrefix()}
	var problems []*fsmpb.Result
	switch {
	case perm <= fsmpb.Permission_PERMISSION_UNSPECIFIED || perm > fsmpb.Permission_ADMIN:
		problems = append(problems, invalid("permission %d: want read, lock, write or admin", perm))
	case perm == fsmpb.Permission_ADMIN && r.prefix != "":
		problems = append(problems, invalid("the admin permission covers every name: its prefix must be empty"))
	}
	if r.prefix != "" {
		problems = append(problems, checkID("prefix", r.prefix, s.limits.NameBytesMax))
	}
	problems = append(problems, s.checkPrincipalName(a.GetPrincipal()))
	if bad := firstProblem(problems...); bad != nil {
		return nil, r, bad
	}
	p, bad := s.knownPrincipal(a.GetPrincipal())
	return p, r, bad
}

// aclGrant adds a rule; granting a rule the principal has already is OK and
// changes nothing.
func (s *State) aclGrant(a *fsmpb.AclRule) *fsmpb.Result {
	p, r, bad := s.checkRule(a)
	if bad != nil {
		return bad
	}
	i, found := slices.BinarySearchFunc(p.rules, r, ruleCompare)
	if found {
		return &fsmpb.Result{Code: fsmpb.Code_OK}
	}
	if len(p.rules) >= RulesPerPrincipalMax {
		return overLimit("principal %q has %d rules, the limit", p.name, RulesPerPrincipalMax)
	}
	p.rules = slices.Insert(slices.Clone(p.rules), i, r)
	return &fsmpb.Result{Code: fsmpb.Code_OK}
}

func (s *State) aclRevoke(a *fsmpb.AclRule) *fsmpb.Result {
	p, r, bad := s.checkRule(a)
	if bad != nil {
		return bad
	}
	i, found := slices.BinarySearchFunc(p.rules, r, ruleCompare)
	if !found {
		return refuse(fsmpb.Code_NOT_FOUND, "principal %q has no %s rule on prefix %q", p.name, permName(r.perm), r.prefix)
	}
	if r.perm == fsmpb.Permission_ADMIN && s.lastAdmin(p) {
		return refuse(fsmpb.Code_LAST_ADMIN, "principal %q is the last with the admin permission; revoking it would leave nobody to manage access", p.name)
	}
	p.rules = slices.Delete(slices.Clone(p.rules), i, i+1)
	return &fsmpb.Result{Code: fsmpb.Code_OK}
}

// principalRecord is p's snapshot record.
func principalRecord(p *principal) *fsmpb.SnapshotRecord {
	r := &fsmpb.PrincipalRecord{Name: p.name}
	for _, ru := range p.rules {
		r.Rules = append(r.Rules, &fsmpb.AclRule{Permission: ru.perm, Prefix: ru.prefix})
	}
	for _, h := range p.tokens {
		r.TokenHashes = append(r.TokenHashes, bytes.Clone(h[:]))
	}
	return &fsmpb.SnapshotRecord{Rec: &fsmpb.SnapshotRecord_Principal{Principal: r}}
}

// principalOf rebuilds a principal from its record; verify checks it.
func principalOf(r *fsmpb.PrincipalRecord) (*principal, error) {
	p := &principal{name: r.GetName()}
	for _, ru := range r.GetRules() {
		if ru == nil {
			return nil, corrupt("principal %q has a nil rule", p.name)
		}
		p.rules = append(p.rules, rule{perm: ru.GetPermission(), prefix: ru.GetPrefix()})
	}
	for _, h := range r.GetTokenHashes() {
		hash, bad := checkTokenHash(h)
		if bad != nil {
			return nil, corrupt("principal %q: %s", p.name, bad.Message)
		}
		p.tokens = append(p.tokens, hash)
	}
	return p, nil
}

// cloneACL copies the principals into c; their slices are shared.
func (s *State) cloneACL(c *State) {
	for name, p := range s.principals {
		cp := *p
		c.principals[name] = &cp
	}
	c.tokens = maps.Clone(s.tokens)
}

// verifyACL checks the principals: valid names, rules sorted and valid,
// tokens sorted, and the token index exactly their tokens.
func (s *State) verifyACL() error {
	tokens := 0
	for _, name := range slices.Sorted(maps.Keys(s.principals)) {
		p := s.principals[name]
		if p == nil || p.name != name {
			return fmt.Errorf("principal index holds %q, which has no record", name)
		}
		if err := checkText("principal", name); err != nil {
			return err
		}
		if err := verifyRules(p.rules); err != nil {
			return fmt.Errorf("principal %q: %w", name, err)
		}
		for i, h := range p.tokens {
			if i > 0 && bytes.Compare(p.tokens[i-1][:], h[:]) >= 0 {
				return fmt.Errorf("principal %q: tokens out of order or repeated", name)
			}
			if s.tokens[h] != name {
				return fmt.Errorf("principal %q: token %s is not indexed to it", name, TokenID(h))
			}
		}
		tokens += len(p.tokens)
	}
	if tokens != len(s.tokens) {
		return fmt.Errorf("%d tokens, but a token index of %d", tokens, len(s.tokens))
	}
	return nil
}

func verifyRules(rules []rule) error {
	for i, r := range rules {
		switch {
		case r.perm <= fsmpb.Permission_PERMISSION_UNSPECIFIED || r.perm > fsmpb.Permission_ADMIN:
			return fmt.Errorf("rule %d: permission %d", i+1, r.perm)
		case r.perm == fsmpb.Permission_ADMIN && r.prefix != "":
			return fmt.Errorf("rule %d: admin with prefix %q", i+1, r.prefix)
		case r.prefix != "" && !utf8.ValidString(r.prefix):
			return fmt.Errorf("rule %d: prefix is not valid UTF-8", i+1)
		case i > 0 && ruleCompare(rules[i-1], r) >= 0:
			return fmt.Errorf("rule %d: out of order or repeated", i+1)
		}
	}
	return nil
}
