package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/config"
)

// The TLS compose cluster's node configs load with both planes on the
// certificates the certs service writes, and every node mounts them and
// waits for that service.
func TestComposeTLSFiles(t *testing.T) {
	root := repoRoot()
	for i := 1; i <= 3; i++ {
		c, err := config.Load(filepath.Join(root, "deploy", "compose", "tls", fmt.Sprintf("config_node%d.yaml", i)))
		if err != nil {
			t.Fatal(err)
		}
		want := config.TLSFiles{CAFile: "/tls/ca.pem", CertFile: fmt.Sprintf("/tls/node-%d.pem", i), KeyFile: fmt.Sprintf("/tls/node-%d-key.pem", i)}
		if c.ID.SelfID != uint32(i) || c.TLS.Peer != want || c.TLS.Client != want {
			t.Errorf("tls/config_node%d.yaml: self_id %d, tls %+v; want %d and both planes on %+v", i, c.ID.SelfID, c.TLS, i, want)
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy", "compose", "docker-compose.tls.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Command   []string
			Volumes   []string
			DependsOn map[string]struct{ Condition string } `yaml:"depends_on"`
		}
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("docker-compose.tls.yml: %v", err)
	}
	certs := f.Services["certs"]
	if !slices.Contains(certs.Command, "--if-absent") || !slices.Contains(certs.Volumes, "tls:/tls") {
		t.Errorf("certs service: command %v, volumes %v; want certs init --if-absent into the tls volume", certs.Command, certs.Volumes)
	}
	for i := 1; i <= 3; i++ {
		s := f.Services[fmt.Sprintf("raft_peer%d", i)]
		if !slices.Contains(s.Volumes, "tls:/tls:ro") || s.DependsOn["certs"].Condition != "service_completed_successfully" {
			t.Errorf("raft_peer%d: volumes %v, depends_on %v; want tls:/tls:ro after certs completes", i, s.Volumes, s.DependsOn)
		}
	}
}

// `make start-tls`'s cluster, end to end: the certs service writes the certificates, the three nodes
// start on them and elect a leader, a client with the admin certificate locks and writes through the
// published ports, and a plaintext client is refused.
func TestComposeTLSCluster(t *testing.T) {
	compose := requireDocker(t)
	image, _ := buildImage(t)
	ports := freePorts(t, 3)
	p := &project{t: t, compose: compose, name: "dlocke2etls" + randomHex(4),
		file: filepath.Join(repoRoot(), "deploy", "compose", "docker-compose.tls.yml"), env: []string{
			"DLOCK_IMAGE=" + image,
			"DLOCK_PORT_1=" + strconv.Itoa(ports[0]),
			"DLOCK_PORT_2=" + strconv.Itoa(ports[1]),
			"DLOCK_PORT_3=" + strconv.Itoa(ports[2]),
		}}
	if err := p.up(); err != nil {
		t.Fatalf("start the TLS compose cluster: %v", err)
	}
	out, err := p.run(composeTimeout, "ps", "-a", "-q", "certs")
	if err != nil {
		t.Fatalf("certs container: %v", err)
	}
	dir := t.TempDir()
	docker(t, "cp", strings.TrimSpace(out)+":/tls/.", dir)
	cfg, err := client.LoadTLSConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client-admin.pem"),
		filepath.Join(dir, "client-admin-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	eps := []string{addr(ports[0]), addr(ports[1]), addr(ports[2])}
	cl, err := client.New(eps, client.WithTLS(cfg), client.WithRetryLimit(client.RetryAttemptsMax))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), leaderTimeout)
	defer cancel()
	if _, err := cl.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("Put with the admin certificate: %v", err)
	}
	if _, err := cl.TryAcquire(ctx, "job", client.WithTTL(10*time.Second), client.WithoutAutoRenew()); err != nil {
		t.Fatalf("TryAcquire with the admin certificate: %v", err)
	}
	plain, err := client.New(eps, client.WithRetryLimit(3))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Put(ctx, "k", []byte("x")); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("plaintext Put = %v, want ErrUnavailable", err)
	}
}
