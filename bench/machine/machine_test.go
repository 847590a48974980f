package machine

import (
	"os"
	"testing"
	"time"
)

func TestCPUModel(t *testing.T) {
	tests := []struct {
		name, give, want string
	}{
		{"x86", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n\nprocessor\t: 1\nmodel name\t: other\n", "Intel(R) Xeon(R) CPU @ 2.20GHz"},
		{"none", "processor\t: 0\nBogoMIPS\t: 48.00\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CPUModel(tt.give); got != tt.want {
				t.Errorf("CPUModel = %q, want %q", got, tt.want)
			}
		})
	}
}

// The probes measure something real on any machine: a positive median, with nothing left behind.
func TestProbes(t *testing.T) {
	dir := t.TempDir()
	f, err := Fsync(dir, 5)
	if err != nil || f <= 0 {
		t.Errorf("Fsync = %v, %v; want a positive duration", f, err)
	}
	r, err := RTT(20)
	if err != nil || r <= 0 {
		t.Errorf("RTT = %v, %v; want a positive duration", r, err)
	}
	if FSType(dir) == "" {
		t.Errorf("FSType(%s) is empty", dir)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A real line of a JVM, whose name holds a space; utime 250 and stime 50 ticks.
	const line = "4242 (java main) S 1 4242 4242 0 -1 4194560 9000 0 12 0 250 50 0 0 20 0 40 0 123 4000000000 50000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0"
	got, err := ParseStatCPU(line)
	if want := 3 * time.Second; err != nil || got != want {
		t.Errorf("ParseStatCPU = %s, %v; want %s", got, err, want)
	}
	if _, err := ParseStatCPU("garbage"); err == nil {
		t.Errorf("ParseStatCPU(garbage) succeeded")
	}
}

func TestCPUTimeOfSelf(t *testing.T) {
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestParseProcStatBusy(t *testing.T) {
	// user 100, nice 10, system 40, idle 9000, iowait 50, irq 5, softirq 3, steal 2: 160 busy ticks.
	const stat = "cpu  100 10 40 9000 50 5 3 2 0 0\ncpu0 50 5 20 4500 25 2 1 1 0 0\n"
	got, err := ParseProcStatBusy(stat)
	if want := 1600 * time.Millisecond; err != nil || got != want {
		t.Errorf("ParseProcStatBusy = %s, %v; want %s", got, err, want)
	}
	if _, err := ParseProcStatBusy("intr 1 2 3\n"); err == nil {
		t.Errorf("ParseProcStatBusy accepted a file without the cpu line")
	}
}

// Work this process does is ours, not the rest of the machine's.
func TestCPUMeterCountsUsAsOurs(t *testing.T) {
	m, err := StartCPUMeter(nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	_, ours, err := m.Others()
	if err != nil {
		t.Fatal(err)
	}
	if ours <= 0.05 {
		t.Errorf("a busy loop counted as %.2f of a core of ours, want more than 0.05 (%d spins)", ours, x)
	}
}
