package docker

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dlock-raft/dlock/internal/config"
)

// The compose cluster runs the seed's own node configs, byte for byte, and they load.
func TestComposeUsesSeedConfigs(t *testing.T) {
	root := repoRoot()
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("config_node%d.yaml", i)
		got, err := os.ReadFile(filepath.Join(root, "deploy", "compose", name))
		if err != nil {
			t.Fatal(err)
		}
		seed, err := os.ReadFile(filepath.Join(root, "internal", "config", "testdata", "seed", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, seed) {
			t.Errorf("deploy/compose/%s differs from the seed's file (internal/config/testdata/seed/%s)", name, name)
		}
		c, err := config.Parse(got)
		if err != nil || c.ID.SelfID != uint32(i) {
			t.Errorf("deploy/compose/%s: self_id %v, error %v; want self_id %d, nil", name, c, err, i)
		}
	}
	single, err := os.ReadFile(filepath.Join(root, "deploy", "compose", "config_single.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := config.Parse(single); err != nil || len(c.Members()) != 1 {
		t.Errorf("deploy/compose/config_single.yaml: %v, error %v; want one member", c, err)
	}
}

// Each compose service mounts its own node's config and volume and publishes that node's client port,
// parameterized so that tests can publish free ports.
func TestComposeFileWiring(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "compose", "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image   string
			Volumes []string
			Ports   []string
		}
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	for i := 1; i <= 3; i++ {
		svc, ok := f.Services[fmt.Sprintf("raft_peer%d", i)]
		want := []any{"${DLOCK_IMAGE:-dlock:dev}",
			[]string{fmt.Sprintf("./config_node%d.yaml:/etc/dlock/config.yaml:ro", i), fmt.Sprintf("node%d:/data", i)},
			[]string{fmt.Sprintf("127.0.0.1:${DLOCK_PORT_%d:-%d}:%d", i, 24004+i, 24004+i)}}
		got := []any{svc.Image, svc.Volumes, svc.Ports}
		if !ok || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("service raft_peer%d: image, volumes, ports = %q, want %q", i, got, want)
		}
	}
}
