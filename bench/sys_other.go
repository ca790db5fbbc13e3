//go:build !linux

package bench

import "syscall"

// childAttr is nil off Linux: there is no parent-death signal, and a
// child outlives a bench that is killed (an interrupted bench still stops
// its children).
func childAttr() *syscall.SysProcAttr { return nil }

// raiseFileLimit leaves the limit as it is off Linux: a fleet larger than
// it fails to dial with "too many open files".
func raiseFileLimit(int) error { return nil }
