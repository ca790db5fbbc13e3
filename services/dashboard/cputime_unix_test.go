//go:build unix

package dashboard

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) the process used so far; ok
// is false where the system does not tell.
func cpuTime(b *testing.B) (used time.Duration, ok bool) {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
