// Package docker tests dlock's Docker deployment as users run it: the image
// built from the Dockerfile, the 3-node cluster of deploy/compose started
// with Docker Compose, and the per-machine files of `dlock config gen`, with
// containers killed, cut off the network and restarted.
//
// Docker and Compose (`docker compose` or `docker-compose`) are required:
// without them the tests fail, saying so, rather than skip. Each test runs
// under its own Compose project name, image tag and free host ports, so it
// does not meet a developer's `make start` or a parallel test run, and it
// removes its containers, networks and volumes even when it fails.
package docker

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	removeImage()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
