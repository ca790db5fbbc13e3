// Package linefile reads the line files goaiot takes as configuration:
// dashboard users, CoAP DTLS pre-shared keys, MQTT-SN predefined topics,
// websocket node tokens and a hub's leaf users. Every format shares one
// shape, read here once:
//
//   - one entry a line; leading and trailing white space is trimmed;
//   - blank lines and lines whose first non-space byte is '#' are skipped;
//   - an entry's error names its line number ("line 3: …"), counting
//     every line, skipped ones included;
//   - a file is at most MaxBytes and a line at most MaxLine bytes: a larger
//     one is refused with ErrTooLarge, never read into memory whole.
//
// Each format parses its own entries (Each's fn); this package knows none.
package linefile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxBytes bounds a file: configuration files are small, so a larger one
// is a mistake (or an attack), refused rather than held in memory.
const MaxBytes = 4 << 20

// MaxLine bounds one line.
const MaxLine = 64 << 10

// ErrTooLarge is returned (wrapped) for a file over MaxBytes or a line
// over MaxLine.
var ErrTooLarge = errors.New("too large")

// LineError is an entry's error with the line number it was found on.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the entry's error.
func (e *LineError) Unwrap() error { return e.Err }

// Each calls fn with the number and trimmed text of every entry of r, in
// order, and stops at the first error: fn's, wrapped in a *LineError, or
// the reader's.
func Each(r io.Reader, fn func(n int, line string) error) error {
	lr := &io.LimitedReader{R: r, N: MaxBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), MaxLine)
	n := 0
	for sc.Scan() {
		n++
		if lr.N <= 0 {
			return fmt.Errorf("file over %d bytes: %w", MaxBytes, ErrTooLarge)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(n, line); err != nil {
			return &LineError{Line: n, Err: err}
		}
	}
	return scanErr(sc.Err(), lr, n)
}

// scanErr names why scanning stopped early, if it did.
func scanErr(err error, lr *io.LimitedReader, n int) error {
	switch {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("line %d: over %d bytes: %w", n+1, MaxLine, ErrTooLarge)
	case err != nil:
		return fmt.Errorf("read: %w", err)
	case lr.N <= 0:
		return fmt.Errorf("file over %d bytes: %w", MaxBytes, ErrTooLarge)
	}
	return nil
}
