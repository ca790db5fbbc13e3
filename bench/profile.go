package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// profiler takes CPU, block and mutex profiles of the self-started server (started with
// --pprof) while scenarios measure, into a directory.
type profiler struct {
	url string // http://127.0.0.1:port/debug/pprof/
	dir string
	wg  sync.WaitGroup
	mu  sync.Mutex
	err []error
}

// start fetches a CPU, a block and a mutex profile of d (whole seconds, at
// least 1) into <dir>/<name>.pprof, <name>.block.pprof and
// <name>.mutex.pprof in the background. A nil profiler does nothing.
func (p *profiler) start(ctx context.Context, name string, d time.Duration) {
	if p == nil {
		return
	}
	secs := strconv.Itoa(max(int(d.Seconds()), 1))
	for _, q := range []struct{ what, file string }{
		{"profile?seconds=" + secs, name + ".pprof"},
		{"block?seconds=" + secs, name + ".block.pprof"},
		{"mutex?seconds=" + secs, name + ".mutex.pprof"},
	} {
		p.wg.Go(func() { p.fetch(ctx, q.what, q.file) })
	}
}

// heap fetches a heap and a goroutine profile now into
// <dir>/<name>.heap.pprof and <name>.goroutine.pprof, and the heap profile
// as text, which ends with the runtime's MemStats (HeapInuse, StackInuse),
// into <name>.heap.txt.
func (p *profiler) heap(ctx context.Context, name string) {
	if p == nil {
		return
	}
	for _, q := range []struct{ what, file string }{
		{"heap", name + ".heap.pprof"},
		{"goroutine", name + ".goroutine.pprof"},
		{"heap?debug=1", name + ".heap.txt"},
	} {
		p.fetch(ctx, q.what, q.file)
	}
}

// fetch gets what into <dir>/<file>, keeping the error for wait.
func (p *profiler) fetch(ctx context.Context, what, file string) {
	if err := p.get(ctx, what, file); err != nil {
		p.mu.Lock()
		p.err = append(p.err, err)
		p.mu.Unlock()
	}
}

// get fetches what into <dir>/<file>.
func (p *profiler) get(ctx context.Context, what, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+what, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", file, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", file, resp.Status)
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("profile %s: %w", file, err)
	}
	return f.Close()
}

// wait waits for the profiles in flight and returns their errors.
func (p *profiler) wait() []error {
	if p == nil {
		return nil
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
