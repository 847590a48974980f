package nemesis

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSameSeedSameSchedule(t *testing.T) {
	p := Plan{Kinds: AllKinds, Nodes: 3, Duration: time.Minute}
	a, b := NewSchedule(7, p), NewSchedule(7, p)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 7 gave two schedules:\n%v\n%v", a, b)
	}
	if c := NewSchedule(8, p); reflect.DeepEqual(a.Steps, c.Steps) {
		t.Fatalf("seeds 7 and 8 gave the same schedule:\n%v", a)
	}
	if !strings.Contains(a.String(), "seed 7") {
		t.Fatalf("schedule text does not name its seed:\n%v", a)
	}
}

func TestScheduleStaysInItsBounds(t *testing.T) {
	p := Plan{Kinds: []Kind{Partition, Delay}, Nodes: 5, Duration: 30 * time.Second,
		HoldMin: time.Second, HoldMax: 2 * time.Second}
	s := NewSchedule(1, p)
	if len(s.Steps) == 0 {
		t.Fatal("empty schedule")
	}
	end := time.Duration(0)
	for _, st := range s.Steps {
		if st.At < end {
			t.Fatalf("step %v starts before the previous one healed (%v)", st, end)
		}
		if st.At >= p.Duration {
			t.Fatalf("step %v starts after the plan's %v", st, p.Duration)
		}
		if st.Kind != Partition && st.Kind != Delay {
			t.Fatalf("step %v of a kind not in the plan", st)
		}
		if st.Hold < p.HoldMin || st.Hold > p.HoldMax {
			t.Fatalf("step %v holds outside [%v, %v]", st, p.HoldMin, p.HoldMax)
		}
		if st.Kind == Partition && (st.Minority < 1 || st.Minority > 2) {
			t.Fatalf("partition of 5 nodes with minority %d", st.Minority)
		}
		end = st.At + st.Hold
	}
}

func TestParseKinds(t *testing.T) {
	ks, err := ParseKinds("crash, pause")
	if err != nil || !reflect.DeepEqual(ks, []Kind{Crash, Pause}) {
		t.Fatalf("ParseKinds = %v, %v", ks, err)
	}
	if ks, _ := ParseKinds("all"); len(ks) != len(AllKinds) {
		t.Fatalf("all = %v", ks)
	}
	if _, err := ParseKinds("crash,meteor"); err == nil || !strings.Contains(err.Error(), `"meteor"`) {
		t.Fatalf("unknown kind: err = %v, want one naming \"meteor\"", err)
	}
}
