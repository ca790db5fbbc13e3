//go:build !unix

package dashboard

import "syscall"

// canWriteNonblock: off Unix every write goes through a writer goroutine.
const canWriteNonblock = false

func nonblockWrite(uintptr, []byte) (int, error) { return 0, syscall.EAGAIN }
