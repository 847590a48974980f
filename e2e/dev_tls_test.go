package e2e

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/freeport"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// `dlock dev --tls` runs its cluster with mutual TLS, and the environment
// it prints is what a client needs: the CLI with it locks, a plaintext
// client is refused.
func TestDevTLSPrintsWhatAClientNeeds(t *testing.T) {
	peerPort, clientPort := freePort(t), freePort(t)
	cmd := exec.Command(testcluster.Binary(t), "dev", "--tls", "--nodes", "1", "--dir", t.TempDir(), "--host", "127.0.0.1",
		"--peer-port", strconv.Itoa(peerPort), "--client-port", strconv.Itoa(clientPort))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		for range lines {
		}
		<-exited
	})

	env := map[string]string{}
	timeout := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("dlock dev --tls exited before it was ready")
			}
			if rest, found := strings.CutPrefix(line, "export "); found {
				for _, kv := range strings.Fields(rest) {
					k, v, _ := strings.Cut(kv, "=")
					env[k] = v
				}
			}
			ready = strings.HasPrefix(line, "Press Ctrl-C")
		case <-timeout:
			t.Fatal("dlock dev --tls printed no ready banner within 60s")
		}
	}
	for _, k := range []string{"DLOCK_ENDPOINTS", "DLOCK_CACERT", "DLOCK_CERT", "DLOCK_KEY"} {
		if env[k] == "" {
			t.Fatalf("banner exports %v, want %s", env, k)
		}
		t.Setenv(k, env[k])
	}
	if out, errOut, code := dlockCmd(t, "", "lock", "acquire", "dev-tls", "--ttl", "5s"); code != 0 {
		t.Fatalf("dlock lock acquire with the printed environment: exit %d\n%s%s", code, out, errOut)
	}
	plain, err := client.New(strings.Split(env["DLOCK_ENDPOINTS"], ","), client.WithRetryLimit(1))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := plain.Put(ctx, "k", []byte("v")); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("plaintext Put against dev --tls = %v, want ErrUnavailable", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	return freeport.Port(t)
}
