package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress draws one line on a terminal: the scenario, a bar of the time
// elapsed, and a count. A nil *progress draws nothing.
type progress struct {
	w  io.Writer
	mu sync.Mutex
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// start draws name's progress every 200 ms until the returned func is
// called: the bar fills over total, count() is shown beside it.
func (p *progress) start(name string, total time.Duration, count func() int64) func() {
	if p == nil || p.w == nil {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			p.draw(name, time.Since(began), total, count())
			select {
			case <-stop:
				fmt.Fprint(p.w, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stop); <-done }
}

func (p *progress) draw(name string, el, total time.Duration, n int64) {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(float64(el)/float64(total), 1)
	}
	full := int(frac * width)
	bar := strings.Repeat("#", full) + strings.Repeat("-", width-full)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%-10s [%s] %3.0f%% %6.1fs %d", name, bar, frac*100, el.Seconds(), n)
}
