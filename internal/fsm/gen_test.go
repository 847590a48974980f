package fsm

import (
	"fmt"
	"math/rand/v2"
	"reflect"

	"google.golang.org/protobuf/proto"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// genLimits are small enough that random traffic reaches every limit:
// six names for four lock records, four clients for three slots.
func genLimits() Limits {
	return Limits{
		NameBytesMax: 8, ValueBytesMax: 4, OwnerBytesMax: 8, WaitersPerLockMax: 2,
		LocksMax: 4, KeysMax: 3, ClientsMax: 3, ResultsPerClientMax: 3,
	}
}

// gen makes random but plausible traffic: retries, stale seqs, leases that
// pass, Expires from stale leaders, time standing still and jumping hours.
type gen struct {
	r    *rand.Rand
	now  int64
	seqs map[string]uint64
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seqs: map[string]uint64{}}
}

func (g *gen) pick(options ...string) string { return options[g.r.IntN(len(options))] }

// entries returns n entries; fence estimates tokens worth naming.
func (g *gen) entries(n int) []*fsmpb.Entry {
	out := make([]*fsmpb.Entry, n)
	for i := range out {
		out[i] = g.entry(uint64(i + 2))
	}
	return out
}

func (g *gen) entry(fence uint64) *fsmpb.Entry {
	switch g.r.IntN(40) {
	case 0:
		g.now += g.r.Int64N(90) * minute
	case 1, 2, 3:
	default:
		g.now += g.r.Int64N(30)
	}
	stamp := g.now
	if g.r.IntN(15) == 0 {
		stamp -= 7 // a stamp from behind; cluster time must not follow it
	}
	e := &fsmpb.Entry{NowNanos: stamp, WallUnixNanos: g.r.Int64()}
	for range 1 + g.r.IntN(4) {
		e.Commands = append(e.Commands, g.dedup(g.command(fence)))
	}
	return e
}

func (g *gen) command(fence uint64) *fsmpb.Command {
	name, owner := g.pick("L0", "L1", "L2", "L3", "L4", "L5", ""), g.pick("a", "b", "c", "d")
	token := g.r.Uint64N(fence + 1)
	ttl, wait := 1+g.r.Int64N(60), g.r.Int64N(80)*int64(g.r.IntN(2))
	switch g.r.IntN(12) {
	case 0, 1, 2:
		return acqBy(name, owner, ttl, wait, g.r.Uint64N(3)) // attempt 0: a call that never withdraws
	case 3:
		return renew(name, owner, token*uint64(g.r.IntN(2)), ttl*int64(g.r.IntN(2)))
	case 4:
		return rel(name, owner, token*uint64(g.r.IntN(2)))
	case 5:
		return withdrawBy(name, owner, g.r.Uint64N(3)) // 0 is refused
	case 6, 7:
		return expire(name, token)
	case 8:
		return leaderStart()
	case 9:
		return put(g.pick("k0", "k1", "k2", "k3", "k4"), g.pick("", "v", "vv", "12345"))
	case 10:
		return del(g.pick("k0", "k1", "k2", "k3", "k4"))
	}
	return &fsmpb.Command{}
}

// dedup tags half the commands with a client: usually its next seq,
// sometimes a retry or an old seq.
func (g *gen) dedup(c *fsmpb.Command) *fsmpb.Command {
	if g.r.IntN(2) == 0 {
		return c
	}
	id := g.pick("c0", "c1", "c2", "c3")
	seq := g.seqs[id] + 1
	if g.r.IntN(4) == 0 {
		seq = max(1, seq-1-g.r.Uint64N(6))
	}
	g.seqs[id] = max(g.seqs[id], seq)
	return as(id, seq, c)
}

// sameOutput reports how two outputs differ, or "".
func sameOutput(a, b Output) string {
	if len(a.Results) != len(b.Results) {
		return fmt.Sprintf("%d results vs %d", len(a.Results), len(b.Results))
	}
	for i := range a.Results {
		if !proto.Equal(a.Results[i], b.Results[i]) {
			return fmt.Sprintf("result %d: %v vs %v", i, a.Results[i], b.Results[i])
		}
	}
	if !reflect.DeepEqual(a.Events, b.Events) {
		return fmt.Sprintf("events %v vs %v", a.Events, b.Events)
	}
	return ""
}
