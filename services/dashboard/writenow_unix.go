//go:build unix

package dashboard

import "syscall"

// canWriteNonblock: the flusher writes to browsers itself (writenow.go).
const canWriteNonblock = true

// nonblockWrite is one write(2) on a socket the runtime keeps non-blocking.
func nonblockWrite(fd uintptr, b []byte) (int, error) {
	return syscall.Write(int(fd), b)
}
