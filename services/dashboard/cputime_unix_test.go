//go:build unix

package dashboard

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) the process used so far; ok
// is true on Unix (cputime_other_test.go: false).
func cpuTime(b *testing.B) (used time.Duration, ok bool) {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
