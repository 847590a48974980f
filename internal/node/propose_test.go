package node

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// prop is a proposal of cmds puts, each with a value of valueBytes.
func prop(cmds, valueBytes int) *proposal {
	var cs []*fsmpb.Command
	for i := 0; i < cmds; i++ {
		cs = append(cs, put(fmt.Sprint("k", i), strings.Repeat("v", valueBytes)))
	}
	return newProposal(cs, false)
}

// indexOf is p's position in ps, or -1 (also for nil).
func indexOf(ps []*proposal, p *proposal) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return -1
}

// gather batches proposals already waiting, within batchCommandsMax
// commands and batchBytesMax bytes, always taking the first; a proposal
// that does not fit starts the next batch.
func TestGatherCapsBatches(t *testing.T) {
	const kib = 1 << 10
	tests := []struct {
		name      string
		give      []*proposal // the first, then those waiting
		wantBatch int         // the batch is give[:wantBatch]
		wantNext  int         // index in give of the proposal handed back, or -1
		wantLeft  int         // proposals still waiting
	}{
		// Proposals already waiting share an entry.
		{name: "alone", give: []*proposal{prop(1, 10)}, wantBatch: 1, wantNext: -1},
		{name: "small ones share", give: []*proposal{prop(1, 10), prop(2, 10), prop(1, 10)}, wantBatch: 3, wantNext: -1},
		// Within batchCommandsMax commands.
		{name: "commands up to the cap", give: []*proposal{prop(500, 1), prop(12, 1)}, wantBatch: 2, wantNext: -1},
		{name: "commands over the cap", give: []*proposal{prop(500, 1), prop(13, 1), prop(1, 1)}, wantBatch: 1, wantNext: 1, wantLeft: 1},
		{name: "commands at the cap stop", give: []*proposal{prop(batchCommandsMax, 1), prop(1, 1)}, wantBatch: 1, wantNext: -1, wantLeft: 1},
		// Within batchBytesMax bytes.
		{name: "bytes over the cap", give: []*proposal{prop(1, 600*kib), prop(1, 600*kib), prop(1, 10)}, wantBatch: 1, wantNext: 1, wantLeft: 1},
		{name: "many values up to the cap", give: []*proposal{prop(1, 300*kib), prop(1, 300*kib), prop(1, 300*kib), prop(1, 300*kib)}, wantBatch: 3, wantNext: 3},
		// Always taking the first.
		{name: "oversized first alone", give: []*proposal{prop(1, 3<<20), prop(1, 10)}, wantBatch: 1, wantNext: -1, wantLeft: 1},
		{name: "oversized next deferred", give: []*proposal{prop(1, 10), prop(1, 3<<20)}, wantBatch: 1, wantNext: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Node{proposals: make(chan *proposal, len(tt.give))}
			for _, p := range tt.give[1:] {
				n.proposals <- p
			}
			batch, next := n.gather(tt.give[0])
			if got := len(batch); got != tt.wantBatch {
				t.Errorf("batch has %d proposals, want %d", got, tt.wantBatch)
			}
			for i, p := range batch {
				if got := indexOf(tt.give, p); got != i {
					t.Errorf("batch[%d] is give[%d], want give[%d]", i, got, i)
				}
			}
			if got := indexOf(tt.give, next); got != tt.wantNext {
				t.Errorf("next is give[%d], want give[%d]", got, tt.wantNext)
			}
			if got := len(n.proposals); got != tt.wantLeft {
				t.Errorf("%d proposals still waiting, want %d", got, tt.wantLeft)
			}
		})
	}
}
