package docker

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

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
