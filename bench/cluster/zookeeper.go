package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ZookeeperClassPath is the class path of Debian's zookeeper package: its jar names its dependencies
// in its manifest; slf4j-simple gives its log lines somewhere to go (stderr, into the member's log).
const ZookeeperClassPath = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"

// ZookeeperSessionMax is the longest session the ensemble grants: the longest TTL a benchmark can give
// ZooKeeper's locks.
const ZookeeperSessionMax = time.Hour

// ZookeeperConfig places a ZooKeeper ensemble.
type ZookeeperConfig struct {
	// Java is the java binary; empty means "java" on PATH.
	Java string
	// ClassPath is the servers' class path; empty means ZookeeperClassPath.
	ClassPath string
	// DataParent is where the ensemble's data directory is made; empty means the system's temp dir.
	DataParent string
}

// Zookeeper is a running three-member ZooKeeper ensemble.
type Zookeeper struct {
	members
	clientAddrs []string
}

// ZooCfg is the zoo.cfg of a member whose data directory and client port are given, in an ensemble
// whose members' quorum and election ports are given. Timing is Debian's example configuration
// (tickTime 2s, initLimit 10, syncLimit 5); forceSync=yes is ZooKeeper's default, written out because
// the benchmark depends on it. The admin server is off (it would take port 8080 on every member), the
// connection cap per client address is raised (every simulated client comes from 127.0.0.1), and the
// srvr command is allowed so that the leader can be found. Sessions may last up to ZookeeperSessionMax
// (ZooKeeper's own cap is 20 ticks, 40 s, which would silently shorten a longer TTL).
func ZooCfg(dataDir string, clientPort int, quorumPorts, electionPorts []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tickTime=2000\ninitLimit=10\nsyncLimit=5\n")
	fmt.Fprintf(&b, "maxSessionTimeout=%d\n", ZookeeperSessionMax.Milliseconds())
	fmt.Fprintf(&b, "dataDir=%s\n", dataDir)
	fmt.Fprintf(&b, "clientPort=%d\nclientPortAddress=127.0.0.1\n", clientPort)
	fmt.Fprintf(&b, "forceSync=yes\n")
	fmt.Fprintf(&b, "maxClientCnxns=1000\n")
	fmt.Fprintf(&b, "admin.enableServer=false\n")
	fmt.Fprintf(&b, "4lw.commands.whitelist=srvr,ruok\n")
	for j := range quorumPorts {
		fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d\n", j+1, quorumPorts[j], electionPorts[j])
	}
	return b.String()
}

// StartZookeeper starts three ZooKeeper servers and waits, within ctx, until one leads and the others
// follow.
func StartZookeeper(ctx context.Context, cfg ZookeeperConfig) (*Zookeeper, error) {
	java, cp := cfg.Java, cfg.ClassPath
	if java == "" {
		java = "java"
	}
	if cp == "" {
		cp = ZookeeperClassPath
	}
	if _, err := os.Stat(strings.Split(cp, ":")[0]); err != nil {
		return nil, fmt.Errorf("zookeeper jar: %w (install Debian's zookeeper package)", err)
	}
	ports, err := FreePorts(9)
	if err != nil {
		return nil, err
	}
	clientPorts, quorumPorts, electionPorts := ports[:3], ports[3:6], ports[6:]
	z := &Zookeeper{}
	for i := range 3 {
		z.clientAddrs = append(z.clientAddrs, fmt.Sprintf("127.0.0.1:%d", clientPorts[i]))
	}
	err = z.start(ctx, cfg.DataParent, "zookeeper", 200*time.Millisecond, func(i int, _, md string) ([]string, error) {
		data := filepath.Join(md, "data")
		if err := os.MkdirAll(data, 0o750); err != nil {
			return nil, fmt.Errorf("make member dir: %w", err)
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), fmt.Appendf(nil, "%d\n", i+1), 0o640); err != nil {
			return nil, fmt.Errorf("write myid: %w", err)
		}
		cfgPath := filepath.Join(md, "zoo.cfg")
		if err := os.WriteFile(cfgPath, []byte(ZooCfg(data, clientPorts[i], quorumPorts, electionPorts)), 0o640); err != nil {
			return nil, fmt.Errorf("write zoo.cfg: %w", err)
		}
		return []string{java, "-cp", cp, "-Dzookeeper.log.dir=" + md, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath}, nil
	}, z.ready)
	if err != nil {
		return nil, err
	}
	return z, nil
}

// ready checks that one member leads and the other two follow: a leader alone has no quorum yet.
func (z *Zookeeper) ready(ctx context.Context) error {
	modes := map[string]int{}
	for _, addr := range z.clientAddrs {
		mode, err := SrvrMode(ctx, addr)
		if err != nil {
			return err
		}
		modes[mode]++
	}
	if modes["leader"] != 1 || modes["follower"] != 2 {
		return fmt.Errorf("zookeeper: modes %v, want 1 leader and 2 followers", modes)
	}
	return nil
}

// Name implements Cluster.
func (z *Zookeeper) Name() string { return "zookeeper" }

// Endpoints implements Cluster.
func (z *Zookeeper) Endpoints() []string { return append([]string(nil), z.clientAddrs...) }

// LeaderPID implements Cluster: it asks each running member's srvr command for its mode.
func (z *Zookeeper) LeaderPID(ctx context.Context) (int, error) {
	var errs []error
	for _, i := range z.running() {
		mode, err := SrvrMode(ctx, z.clientAddrs[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if mode == "leader" {
			return z.procs[i].pid(), nil
		}
	}
	return 0, fmt.Errorf("zookeeper: no running member leads: %w", errors.Join(errs...))
}

// SrvrMode sends ZooKeeper's srvr four-letter command to addr and returns the Mode it reports
// ("leader", "follower", "standalone"). A server that is up but not in a quorum answers that it is not
// serving requests, which is an error here.
func SrvrMode(ctx context.Context, addr string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("zookeeper srvr %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "srvr"); err != nil {
		return "", fmt.Errorf("zookeeper srvr %s: %w", addr, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("zookeeper srvr %s: %w", addr, err)
	}
	return ParseSrvrMode(string(out))
}

// ParseSrvrMode returns the value of the "Mode:" line of srvr's output.
func ParseSrvrMode(out string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if mode, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Mode:"); ok {
			return strings.TrimSpace(mode), nil
		}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return "", fmt.Errorf("zookeeper srvr: no Mode line in %q", first)
}
