// Package machine reads what the benchmark report says about the machine it ran on, and measures the
// machine's floor for a replicated lock: how long a small fsync'd write and a loopback round trip take.
package machine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dlock-raft/dlock/bench/report"
)

// Describe reads the machine's description; dataDir is where the clusters keep their data. A reading
// that fails is left empty, which the report shows as unknown: a description is no reason to fail a
// benchmark.
func Describe(dataDir string) report.Machine {
	return report.Machine{
		CPUs:      firstLine(output("nproc")),
		CPUModel:  CPUModel(readFile("/proc/cpuinfo")),
		Kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		GoVersion: runtime.Version(),
		Etcd:      join(pkgVersion("etcd-server"), firstLine(output("/usr/bin/etcd", "--version"))),
		Zookeeper: pkgVersion("zookeeper"),
		Java:      firstLine(output("java", "-version")),
		DataFS:    FSType(dataDir),
	}
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " (" + b + ")"
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}

// output runs a command and returns its stdout and stderr (java -version prints on stderr).
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(b)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

func pkgVersion(pkg string) string {
	return strings.TrimSpace(output("dpkg-query", "-W", "-f=${Version}", pkg))
}

// CPUModel returns the first "model name" of /proc/cpuinfo's text.
func CPUModel(cpuinfo string) string {
	sc := bufio.NewScanner(strings.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// fsMagic names the filesystems a data directory is likely on, by statfs magic number.
var fsMagic = map[int64]string{
	0xEF53: "ext4 (or ext2/3)", 0x01021994: "tmpfs (fsync is free: numbers would flatter everyone)",
	0x58465342: "xfs", 0x9123683E: "btrfs", 0x794c7630: "overlayfs", 0x2FC12FC1: "zfs",
}

// FSType names the filesystem dir is on.
func FSType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ""
	}
	if n, ok := fsMagic[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("magic %#x", st.Type)
}

// Fsync returns the median latency of n writes of 64 bytes, each followed by fsync, to a new file in
// dir, which it removes: the cost a Raft log append pays at least once before it is acknowledged.
func Fsync(dir string, n int) (_ time.Duration, err error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return 0, fmt.Errorf("fsync probe: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close(), os.Remove(f.Name())) }()
	buf := bytes.Repeat([]byte{'x'}, 64)
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, fmt.Errorf("fsync probe: write %s: %w", filepath.Base(f.Name()), err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("fsync probe: fsync %s: %w", filepath.Base(f.Name()), err)
		}
		lat = append(lat, time.Since(t0))
	}
	return medianOf(lat), nil
}

// RTT returns the median of n one-byte round trips over a loopback TCP connection to an echo server
// it runs for the purpose and stops before returning.
func RTT(n int) (_ time.Duration, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("rtt probe: %w", err)
	}
	// The echo goroutine is owned here: closing the listener and the client connection ends it, and
	// wg.Wait makes sure it has before RTT returns.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	defer wg.Wait()
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("rtt probe: %w", err)
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	b := []byte{1}
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return 0, fmt.Errorf("rtt probe: write: %w", err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, fmt.Errorf("rtt probe: read: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	return medianOf(lat), nil
}

func medianOf(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// userHZ is the unit of /proc/PID/stat's CPU times: USER_HZ, 100 on every Linux architecture Go
// supports.
const userHZ = 100

// CPUTime returns the user plus system CPU time process pid has used so far, from /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return ParseStatCPU(string(b))
}

// ParseStatCPU returns utime + stime of a /proc/PID/stat line. The command name, field 2, is in
// parentheses and may hold spaces, so fields are counted from the last ')'.
func ParseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat %q: no ')'", stat)
	}
	f := strings.Fields(stat[i+1:])
	// After the name: state is field 3, so utime (14) and stime (15) are f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		var n int64
		if _, err := fmt.Sscan(s, &n); err != nil {
			return 0, fmt.Errorf("parse /proc stat field %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// BusyCPU returns the CPU time the whole machine has spent busy (every state but idle and iowait),
// summed over all CPUs, from /proc/stat.
func BusyCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("busy cpu: %w", err)
	}
	return ParseProcStatBusy(string(b))
}

// ParseProcStatBusy returns the busy time of /proc/stat's "cpu" line: user, nice, system, irq, softirq
// and steal (guest time is already counted in user).
func ParseProcStatBusy(stat string) (time.Duration, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("parse /proc/stat: first line %q is not the cpu total", line)
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		var n int64
		if _, err := fmt.Sscan(f[i], &n); err != nil {
			return 0, fmt.Errorf("parse /proc/stat field %q: %w", f[i], err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// A CPUMeter measures what the rest of the machine uses: all busy CPU minus the CPU of the processes
// it was told are ours (this process is always ours).
type CPUMeter struct {
	pids        []int
	busy, owned time.Duration
	t0          time.Time
}

// StartCPUMeter starts measuring; pids are the processes whose CPU is not counted as the rest's.
func StartCPUMeter(pids []int) (*CPUMeter, error) {
	m := &CPUMeter{pids: append([]int{os.Getpid()}, pids...)}
	var err error
	if m.busy, m.owned, err = m.read(); err != nil {
		return nil, err
	}
	m.t0 = time.Now()
	return m, nil
}

func (m *CPUMeter) read() (busy, owned time.Duration, err error) {
	if busy, err = BusyCPU(); err != nil {
		return 0, 0, err
	}
	for _, pid := range m.pids {
		t, err := CPUTime(pid)
		if err != nil {
			return 0, 0, err
		}
		owned += t
	}
	return busy, owned, nil
}

// Others returns the share of one core the rest of the machine used since StartCPUMeter (0.5: half a
// core), and the share our processes used.
func (m *CPUMeter) Others() (others, ours float64, err error) {
	busy, owned, err := m.read()
	if err != nil {
		return 0, 0, err
	}
	el := float64(time.Since(m.t0))
	if el <= 0 {
		return 0, 0, nil
	}
	ownedD := owned - m.owned
	return max(0, float64(busy-m.busy-ownedD)/el), float64(ownedD) / el, nil
}
