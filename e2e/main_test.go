// Package e2e runs dlock as users run it: real `dlock serve` processes on
// loopback, driven through the seed-compatible API, killed with SIGKILL.
package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
