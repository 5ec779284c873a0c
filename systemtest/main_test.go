package systemtest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine of the whole system outlives the
// tests: every service, the embedded NATS server and the clients must stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
