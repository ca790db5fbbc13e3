package bench

import (
	"fmt"
	"syscall"
)

// childAttr makes a child the bench starts die with it (SIGKILL when the
// bench's thread ends), so that no server outlives an interrupted run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// raiseFileLimit lets this process (and the server it starts, which
// inherits it) hold n descriptors beside its own: the soft limit is raised,
// and the hard one too where the process may (CAP_SYS_RESOURCE).
func raiseFileLimit(n int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	want := uint64(n) + 1024
	if l.Cur >= want {
		return nil
	}
	l.Cur, l.Max = want, max(l.Max, want)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("%d mqtt nodes need %d open files, above this machine's hard limit (ulimit -Hn; raising it needs CAP_SYS_RESOURCE): give fewer --nodes: %w", n, want, err)
	}
	return nil
}
