package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
)

// Bounds on the slow steps; the test fails, naming the step, past them.
const (
	buildTimeout   = 5 * time.Minute
	composeTimeout = 2 * time.Minute
	dockerTimeout  = time.Minute
	leaderTimeout  = 60 * time.Second
)

// repoRoot is the repository's top directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// run runs a command, bounded by timeout, and returns its combined output.
func run(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %v", ctx.Err(), timeout)
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

var (
	dockerOnce  sync.Once
	composeArgv []string
	dockerErr   error
)

// requireDocker fails the test unless the Docker daemon answers and Compose is installed, and returns
// the Compose command: `docker compose` if present, else `docker-compose`.
func requireDocker(t *testing.T) []string {
	t.Helper()
	dockerOnce.Do(func() {
		if _, err := exec.LookPath("docker"); err != nil {
			dockerErr = fmt.Errorf("the docker command is not installed (%v)", err)
			return
		}
		if _, err := run(30*time.Second, nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
			dockerErr = fmt.Errorf("the Docker daemon is unreachable: %v", err)
			return
		}
		if _, err := run(30*time.Second, nil, "docker", "compose", "version"); err == nil {
			composeArgv = []string{"docker", "compose"}
			return
		}
		if _, err := run(30*time.Second, nil, "docker-compose", "version"); err == nil {
			composeArgv = []string{"docker-compose"}
			return
		}
		dockerErr = errors.New("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")
	})
	if dockerErr != nil {
		t.Fatalf("this test needs Docker Engine and Docker Compose: %v", dockerErr)
	}
	return composeArgv
}

var (
	imageOnce sync.Once
	imageTag  string
	imageBin  string // the dlock binary the image holds, for running the CLI on the host
	imageDir  string
	imageErr  error
)

// buildImage builds the image once per test process, as `make image` does: a static binary built on
// the host, then `docker build` of the Dockerfile with a context holding build/image/dlock and an
// empty build/image/data. The context is a temporary directory and the tag unique, so a parallel
// `make image` is not disturbed. TestMain removes the image.
func buildImage(t *testing.T) (tag, bin string) {
	t.Helper()
	requireDocker(t)
	imageOnce.Do(func() {
		start := time.Now()
		imageTag = "dlock:e2e-" + randomHex(4)
		imageDir, imageErr = os.MkdirTemp("", "dlock-image-")
		if imageErr != nil {
			return
		}
		imageErr = buildImageIn(imageDir, imageTag)
		imageBin = filepath.Join(imageDir, "build", "image", "dlock")
		t.Logf("built image %s in %v", imageTag, time.Since(start).Round(time.Millisecond))
	})
	if imageErr != nil {
		t.Fatalf("build the dlock image: %v", imageErr)
	}
	return imageTag, imageBin
}

func buildImageIn(dir, tag string) error {
	root := repoRoot()
	bin := filepath.Join(dir, "build", "image", "dlock")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dlock")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/dlock: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(dir, "build", "image", "data"), 0o755); err != nil {
		return err
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	_, err := run(buildTimeout, nil, "docker", "build", "-t", tag, dir)
	return err
}

func removeImage() {
	if imageTag != "" {
		_, _ = run(dockerTimeout, nil, "docker", "rmi", "-f", imageTag)
	}
	if imageDir != "" {
		_ = os.RemoveAll(imageDir)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("probe a free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// portTaken reports whether a failed `up` failed because a host port was taken meanwhile.
func portTaken(err error) bool {
	s := err.Error()
	return strings.Contains(s, "port is already allocated") || strings.Contains(s, "address already in use")
}

// project is one Compose project: a compose file run under a unique project name.
type project struct {
	t       *testing.T
	compose []string
	name    string
	file    string
	env     []string
}

func (p *project) run(timeout time.Duration, args ...string) (string, error) {
	argv := append(append(append([]string{}, p.compose[1:]...), "-p", p.name, "-f", p.file), args...)
	return run(timeout, p.env, p.compose[0], argv...)
}

// up starts the project. It registers, first, the project's removal with its volumes at the end of
// the test, after printing its logs if the test failed.
func (p *project) up() error {
	p.t.Cleanup(func() {
		if p.t.Failed() {
			out, _ := p.run(composeTimeout, "logs", "--no-color", "--tail", "60")
			p.t.Logf("logs of %s:\n%s", p.name, out)
		}
		if _, err := p.run(composeTimeout, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			p.t.Errorf("remove compose project %s: %v", p.name, err)
		}
	})
	_, err := p.run(composeTimeout, "up", "-d")
	return err
}

// container returns the id of service's container.
func (p *project) container(service string) string {
	p.t.Helper()
	out, err := p.run(composeTimeout, "ps", "-q", service)
	id := strings.TrimSpace(out)
	if err != nil || id == "" || strings.Contains(id, "\n") {
		p.t.Fatalf("container of service %s: %q, %v", service, out, err)
	}
	return id
}

// docker runs a docker command that must succeed.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(dockerTimeout, nil, "docker", args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return strings.TrimSpace(out)
}

// status asks the node at endpoint for its view of the cluster.
func status(ctx context.Context, endpoint string) (*dlockv1.StatusResponse, error) {
	conn, err := grpc.NewClient("passthrough:///"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return dlockv1.NewClusterClient(conn).Status(ctx, &dlockv1.StatusRequest{})
}

// waitLeader waits until the nodes at endpoints (by node id) agree on a leader that serves, and
// returns its id.
func waitLeader(t *testing.T, endpoints map[int]string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), leaderTimeout)
	defer cancel()
	var last error
	for {
		leader, err := agreedLeader(ctx, endpoints)
		if err == nil {
			return leader
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("nodes %v agree on no serving leader within %v: %v", keys(endpoints), leaderTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func agreedLeader(ctx context.Context, endpoints map[int]string) (int, error) {
	var leader uint32
	for id, ep := range endpoints {
		st, err := status(ctx, ep)
		if err != nil {
			return 0, fmt.Errorf("node %d: %w", id, err)
		}
		if !st.Ready || st.LeaderId == 0 {
			return 0, fmt.Errorf("node %d: no leader yet", id)
		}
		if leader != 0 && st.LeaderId != leader {
			return 0, fmt.Errorf("node %d sees leader %d, another node %d", id, st.LeaderId, leader)
		}
		leader = st.LeaderId
	}
	ep, ok := endpoints[int(leader)]
	if !ok {
		return 0, fmt.Errorf("leader %d is not among nodes %v", leader, keys(endpoints))
	}
	if st, err := status(ctx, ep); err != nil || st.State != "Leader" || !st.Ready {
		return 0, fmt.Errorf("leader %d not serving yet (%v)", leader, err)
	}
	return int(leader), nil
}

// waitCaughtUp waits until node id has applied everything the leader had committed when the wait
// began.
func waitCaughtUp(t *testing.T, endpoints map[int]string, id int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), leaderTimeout)
	defer cancel()
	leader := waitLeader(t, endpoints)
	st, err := status(ctx, endpoints[leader])
	if err != nil {
		t.Fatalf("status of leader %d: %v", leader, err)
	}
	for {
		got, err := status(ctx, endpoints[id])
		if err == nil && got.AppliedIndex >= st.CommitIndex {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %d has not applied index %d within %v (last: %v, %v)", id, st.CommitIndex, leaderTimeout, got, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func keys(m map[int]string) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func without(m map[int]string, skip int) map[int]string {
	out := map[int]string{}
	for k, v := range m {
		if k != skip {
			out[k] = v
		}
	}
	return out
}

func values(m map[int]string) []string {
	var vs []string
	for id := 1; len(vs) < len(m); id++ {
		if v, ok := m[id]; ok {
			vs = append(vs, v)
		}
	}
	return vs
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
