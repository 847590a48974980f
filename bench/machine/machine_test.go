package machine

import (
	"testing"
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
