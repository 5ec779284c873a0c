package netpoll_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind, in
// particular a Poller wait loop that Close did not stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
