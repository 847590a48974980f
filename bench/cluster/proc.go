// Package cluster starts three-member clusters of dlock, etcd and ZooKeeper on 127.0.0.1 for the
// benchmark: each member a real process of its own, with its data in a directory of its own and the
// server's default durability (every write fsync'd), and stops them again.
//
// The lifecycle, for each kind:
//
//  1. StartDlock, StartEtcd or StartZookeeper writes the members' configurations, starts them and
//     returns once the cluster has a leader and serves clients, or stops whatever it started and
//     returns the error.
//  2. Endpoints gives the client addresses; LeaderPID finds the leader's process, for a failover.
//  3. Kill SIGKILLs one member and waits for it to die; Stop kills every member, waits for each, and
//     removes the data directory. Call Stop on every path, failure included (defer it). A benchmark
//     killed before its Stop leaves its data directory; the next start under the same parent removes
//     it, once the process that made it is gone.
//
// Each member runs in its own process group, which Kill and Stop kill whole (a JVM or a shell wrapper
// leaves no child behind), and with Pdeathsig set, so a benchmark that dies leaves no server running.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A Cluster is a running three-member cluster. Its methods are safe for concurrent use.
type Cluster interface {
	// Name is the system's label: "dlock", "etcd", "zookeeper".
	Name() string
	// Endpoints are the members' client addresses, host:port.
	Endpoints() []string
	// PIDs are the members' process ids, in member order; a killed member's stays listed.
	PIDs() []int
	// LeaderPID asks the members which of them leads and returns its process id. It fails if no
	// running member claims to lead before ctx ends.
	LeaderPID(ctx context.Context) (int, error)
	// Kill SIGKILLs the member with process id pid (its whole process group) and waits for it to exit.
	Kill(pid int) error
	// Stop kills every member, waits for each to exit and removes the data directory. It is
	// idempotent.
	Stop() error
}

// exitWaitMax bounds how long Kill waits for a SIGKILLed process to be reaped. SIGKILL cannot be
// caught, so only a process stuck in the kernel (an fsync on a dying disk) takes longer.
const exitWaitMax = 30 * time.Second

// proc is one member's process. Its exit is waited for by one goroutine, started by startProc and
// ended by the process's exit, which kill waits for: so the goroutine never outlives kill.
type proc struct {
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	once   sync.Once
	err    error
}

// startProc starts name args in dir, in a process group of its own, with stdout and stderr appended
// to logPath.
func startProc(dir, logPath, name string, args ...string) (*proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %q: %w", logPath, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill SIGKILLs the process group and waits for the leader process to be reaped. It is idempotent.
func (p *proc) kill() error {
	p.once.Do(func() {
		// The negative pid names the process group; ESRCH means it is gone already.
		if err := syscall.Kill(-p.pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.err = fmt.Errorf("kill process group %d: %w", p.pid(), err)
		}
		select {
		case <-p.exited:
		case <-time.After(exitWaitMax):
			p.err = errors.Join(p.err, fmt.Errorf("process %d not reaped %s after SIGKILL", p.pid(), exitWaitMax))
		}
		p.err = errors.Join(p.err, p.log.Close())
	})
	return p.err
}

// members is the process bookkeeping the three launchers share.
type members struct {
	dir   string
	procs []*proc
	mu    sync.Mutex
	done  bool
}

func (m *members) PIDs() []int {
	pids := make([]int, len(m.procs))
	for i, p := range m.procs {
		pids[i] = p.pid()
	}
	return pids
}

func (m *members) Kill(pid int) error {
	for _, p := range m.procs {
		if p.pid() == pid {
			return p.kill()
		}
	}
	return fmt.Errorf("cluster: no member has pid %d", pid)
}

func (m *members) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return nil
	}
	m.done = true
	var errs []error
	for _, p := range m.procs {
		errs = append(errs, p.kill())
	}
	if m.dir != "" {
		errs = append(errs, os.RemoveAll(m.dir))
	}
	return errors.Join(errs...)
}

// start makes the cluster's data directory under parent and starts its three members, each in its own
// directory md under it, as the command that argv returns (after writing there whatever the member
// needs), with its output in md/<name>.log. Then it calls ready every poll until it succeeds or ctx
// ends. On failure it stops whatever it started.
func (m *members) start(ctx context.Context, parent, name string, poll time.Duration,
	argv func(i int, dir, md string) ([]string, error), ready func(context.Context) error) (err error) {
	if m.dir, err = newDataDir(parent, name); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, m.Stop())
		}
	}()
	for i := range 3 {
		md := memberDir(m.dir, i)
		if err := os.MkdirAll(md, 0o750); err != nil {
			return fmt.Errorf("make member dir: %w", err)
		}
		args, err := argv(i, m.dir, md)
		if err != nil {
			return err
		}
		p, err := startProc(md, filepath.Join(md, name+".log"), args[0], args[1:]...)
		if err != nil {
			return err
		}
		m.procs = append(m.procs, p)
	}
	if err := waitUntil(ctx, poll, ready); err != nil {
		return fmt.Errorf("%s cluster did not come up: %w\nmember 1 log:\n%s", name, err, logTail(filepath.Join(memberDir(m.dir, 0), name+".log")))
	}
	return nil
}

// running lists the indexes of members still running.
func (m *members) running() []int {
	var idx []int
	for i, p := range m.procs {
		if p.running() {
			idx = append(idx, i)
		}
	}
	return idx
}

// logTail is the end of the log at path, for an error saying why a cluster did not come up.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const tailMax = 2000
	if len(b) > tailMax {
		b = b[len(b)-tailMax:]
	}
	return string(b)
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1. It holds every listener until all are
// found, so no two are the same; a port may still be taken by someone else before the server binds
// it, which the server then reports.
func FreePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("probe a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// dataDirPrefix begins the name of every cluster's data directory; ownerFile, inside one, holds the
// process id of the benchmark that made it.
const (
	dataDirPrefix = "dlock-bench-"
	ownerFile     = "owner.pid"
)

// newDataDir makes the cluster's data directory under parent ("" is the system's temp dir), after
// removing those a benchmark killed before its Stop left there.
func newDataDir(parent, name string) (string, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	removeOrphanDataDirs(parent)
	dir, err := os.MkdirTemp(parent, dataDirPrefix+name+"-")
	if err != nil {
		return "", fmt.Errorf("make data dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o640); err != nil {
		return "", errors.Join(fmt.Errorf("make data dir: %w", err), os.RemoveAll(dir))
	}
	return dir, nil
}

// removeOrphanDataDirs removes the data directories under parent whose owner process no longer
// exists: a benchmark SIGKILLed before its Stop, whose servers Pdeathsig killed with it. A directory
// without a readable owner, or whose owner's id a live process now has, is kept: removing a
// directory another benchmark is using would be worse than leaving one behind. Failures are ignored
// for the same reason.
func removeOrphanDataDirs(parent string) {
	dirs, err := filepath.Glob(filepath.Join(parent, dataDirPrefix+"*"))
	if err != nil {
		return
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

// waitUntil calls check every interval until it returns nil or ctx ends; then it returns check's last
// error, which says more than ctx's.
func waitUntil(ctx context.Context, interval time.Duration, check func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%v; last check: %w", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func memberDir(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("m%d", i+1)) }
