package nemesis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/internal/faultnet"
)

// transferCluster is a cluster of three whose leader is node 0 and whose
// transfers fail with err; it isolates the runner's handling of a fault
// the cluster refuses.
type transferCluster struct {
	err       error
	transfers int
}

func (c *transferCluster) Size() int                                 { return 3 }
func (c *transferCluster) Leader(context.Context) (int, error)       { return 0, nil }
func (c *transferCluster) Crash(int) error                           { return ErrUnsupported }
func (c *transferCluster) Restart(int) error                         { return ErrUnsupported }
func (c *transferCluster) Pause(int) error                           { return ErrUnsupported }
func (c *transferCluster) Resume(int) error                          { return ErrUnsupported }
func (c *transferCluster) JumpClock(int, time.Duration) error        { return ErrUnsupported }
func (c *transferCluster) Fabric() *faultnet.Fabric                  { return nil }
func (c *transferCluster) Supports(k Kind) bool                      { return k == Transfer }
func (c *transferCluster) Transfer(ctx context.Context, _ int) error { c.transfers++; return c.err }

func runTransfers(t *testing.T, c *transferCluster, probe func(context.Context) error) ([]Event, error) {
	t.Helper()
	start := time.Now()
	r := &Runner{
		Cluster: c, Probe: probe, RecoveryMax: 200 * time.Millisecond,
		Now: func() time.Duration { return time.Since(start) },
		Log: func(string, ...any) {},
	}
	s := Schedule{Steps: []Step{{Kind: Transfer, Pick: 1}, {Kind: Transfer, Pick: 2}}}
	return r.Run(context.Background(), s)
}

// A transfer the cluster refuses (Raft's transfer timed out) is recorded as
// declined and the run goes on; the cluster must still serve afterwards.
func TestDeclinedTransferDoesNotEndTheRun(t *testing.T) {
	c := &transferCluster{err: errors.New("dlock: leadership transfer: leadership transfer timeout")}
	probes := 0
	events, err := runTransfers(t, c, func(context.Context) error { probes++; return nil })
	if err != nil {
		t.Fatalf("run: %v; want the declined transfers recorded, not an error", err)
	}
	if len(events) != 2 || c.transfers != 2 || probes != 2 {
		t.Fatalf("%d events, %d transfers, %d probes; want 2 of each", len(events), c.transfers, probes)
	}
	for _, e := range events {
		if e.Declined == nil || e.Err != nil || !strings.Contains(e.String(), "declined: dlock: leadership transfer") {
			t.Errorf("event %v: declined %v, err %v; want declined and no error", e, e.Declined, e.Err)
		}
	}
}

// A declined transfer does not excuse a cluster that then stops serving.
func TestDeclinedTransferStillNeedsRecovery(t *testing.T) {
	c := &transferCluster{err: errors.New("dlock: leadership transfer: leadership transfer timeout")}
	events, err := runTransfers(t, c, func(context.Context) error { return errors.New("no leader") })
	if err == nil || len(events) != 1 || !strings.Contains(err.Error(), "not serving") {
		t.Fatalf("run: %v after %d events; want the run to stop at the first step, not serving", err, len(events))
	}
}
