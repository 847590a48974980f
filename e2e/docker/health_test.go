package docker

import (
	"strings"
	"testing"
	"time"
)

// waitHealthy waits until Docker reports every node's container healthy:
// the Compose health check, `/dlock health` inside the FROM-scratch image,
// found the node ready through the gRPC health service on its client port.
func waitHealthy(t *testing.T, c *composeCluster) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for id, ctr := range c.containers {
		for {
			st := strings.TrimSpace(docker(t, "inspect", "-f", "{{.State.Health.Status}}", ctr))
			if st == "healthy" {
				break
			}
			if time.Now().After(deadline) {
				log := docker(t, "inspect", "-f", "{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}", ctr)
				t.Fatalf("node %d's container is %q, not healthy, after 90s; its health checks: %s", id, st, log)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}
