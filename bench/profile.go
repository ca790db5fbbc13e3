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

// profiler takes CPU profiles of the self-started server (started with
// --pprof) while scenarios measure, into a directory.
type profiler struct {
	url string // http://127.0.0.1:port/debug/pprof/
	dir string
	wg  sync.WaitGroup
	mu  sync.Mutex
	err []error
}

// start fetches a CPU profile of d (whole seconds, at least 1) into
// <dir>/<name>.pprof in the background. A nil profiler does nothing.
func (p *profiler) start(ctx context.Context, name string, d time.Duration) {
	if p == nil {
		return
	}
	secs := max(int(d.Seconds()), 1)
	p.wg.Go(func() {
		if err := p.fetch(ctx, name, secs); err != nil {
			p.mu.Lock()
			p.err = append(p.err, err)
			p.mu.Unlock()
		}
	})
}

// heap fetches a heap profile now into <dir>/<name>.heap.pprof.
func (p *profiler) heap(ctx context.Context, name string) {
	if p == nil {
		return
	}
	if err := p.get(ctx, "heap", name+".heap"); err != nil {
		p.mu.Lock()
		p.err = append(p.err, err)
		p.mu.Unlock()
	}
}

func (p *profiler) fetch(ctx context.Context, name string, secs int) error {
	return p.get(ctx, "profile?seconds="+strconv.Itoa(secs), name)
}

func (p *profiler) get(ctx context.Context, what, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+what, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile %s: %s", name, resp.Status)
	}
	f, err := os.Create(filepath.Join(p.dir, name+".pprof"))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("cpu profile %s: %w", name, err)
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
