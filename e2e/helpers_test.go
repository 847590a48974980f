package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"testing"

	"github.com/dlock-raft/dlock/client"
	"github.com/dlock-raft/dlock/internal/testcluster"
)

// newClient is a client of endpoints, closed when the test ends.
func newClient(t *testing.T, endpoints ...string) *client.Client {
	t.Helper()
	cl, err := client.New(endpoints)
	if err != nil {
		t.Fatalf("client.New(%v): %v", endpoints, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// dlockCmd runs the dlock binary in dir ("" for the test's) and returns
// what it printed and its exit status.
func dlockCmd(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testcluster.Binary(t), args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("dlock %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// dlockAgainst runs the dlock command line against endpoints and returns
// what it printed (stdout, then stderr) and its exit status.
func dlockAgainst(t *testing.T, endpoints string) func(args ...string) (string, int) {
	return func(args ...string) (string, int) {
		t.Helper()
		out, errOut, code := dlockCmd(t, "", append(args, "--endpoints", endpoints)...)
		return out + errOut, code
	}
}
