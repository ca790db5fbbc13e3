//go:build !unix

package dashboard

import (
	"testing"
	"time"
)

// cpuTime is the CPU time the process used so far; here (no getrusage)
// it is not measured, and the benchmark reports no CPU per delivery.
func cpuTime(b *testing.B) (used time.Duration, ok bool) {
	b.Helper()
	return 0, false
}
