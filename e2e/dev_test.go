package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// `dlock dev` starts a local cluster, prints its endpoints once it has a
// leader, serves locks, and stops every node on Ctrl-C.
func TestDevClusterStartsServesAndStops(t *testing.T) {
	bin := testcluster.Binary(t)
	host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(256), 1+rand.IntN(250))
	peer, cli, metrics := 20000+rand.IntN(10000), 40000+rand.IntN(10000), 30000+rand.IntN(10000)
	cmd := exec.Command(bin, "dev", "--nodes", "3", "--dir", t.TempDir(), "--host", host,
		"--peer-port", fmt.Sprint(peer), "--client-port", fmt.Sprint(cli), "--metrics-port", fmt.Sprint(metrics))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	var endpoints string
	var metricsURLs []string
	timeout := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("dlock dev exited before it was ready: %v", <-exited)
			}
			if v, found := strings.CutPrefix(line, "export DLOCK_ENDPOINTS="); found {
				endpoints = v
			}
			if _, v, found := strings.Cut(line, "  metrics "); found {
				metricsURLs = append(metricsURLs, strings.Fields(v)[0])
			}
			ready = strings.HasPrefix(line, "Press Ctrl-C")
		case <-timeout:
			t.Fatal("dlock dev printed no ready banner within 60s")
		}
	}
	want := fmt.Sprintf("%s:%d,%s:%d,%s:%d", host, cli, host, cli+1, host, cli+2)
	if endpoints != want {
		t.Fatalf("banner endpoints = %q, want %q", endpoints, want)
	}

	// Every node serves metrics and readiness on the port the banner names.
	for i, u := range metricsURLs {
		if want := fmt.Sprintf("http://%s:%d/metrics", host, metrics+i); u != want {
			t.Errorf("banner metrics of node %d = %q, want %q", i+1, u, want)
		}
		ready := strings.TrimSuffix(u, "/metrics") + "/readyz"
		if code := waitHTTPStatus(t, ready, 200, 10*time.Second); code != 200 {
			t.Errorf("node %d /readyz = %d, want 200", i+1, code)
		}
	}
	if len(metricsURLs) != 3 {
		t.Errorf("banner named %d metrics URLs, want 3", len(metricsURLs))
	}

	c, err := client.New(strings.Split(endpoints, ","))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	l, err := c.Acquire(ctx, "dev-lock", client.WithoutAutoRenew())
	cancel()
	c.Close()
	if err != nil || l.Token() == 0 {
		t.Fatalf("acquire on the dev cluster: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dlock dev after Ctrl-C exited with %v, want success", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dlock dev still running 30s after Ctrl-C")
	}
	for i := 0; i < 3; i++ {
		addr := net.JoinHostPort(host, fmt.Sprint(cli+i))
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("node %d still accepts connections on %s after dlock dev stopped", i+1, addr)
		}
	}
}

// waitHTTPStatus GETs url until it answers want or timeout passes, and
// returns the last status code (0 if it never answered).
func waitHTTPStatus(t *testing.T, url string, want int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code := 0
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			code = resp.StatusCode
		}
		if code == want || time.Now().After(deadline) {
			return code
		}
		time.Sleep(20 * time.Millisecond)
	}
}
