package faults

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goaiot/goaiot/internal/readiness"
)

// proc is one aiot process a test starts, kills and starts again with the
// same arguments (and so the same data directory and ports).
type proc struct {
	t     *testing.T
	name  string
	args  []string
	ready string // its ready file

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{} // closed when the current process's stderr ends
	lines []string      // the last log lines, shown if the test fails
	addrs map[string]string
}

// launch starts aiot with args and returns at once; awaitReady waits for
// it. The process is killed when the test ends.
func launch(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, ready: filepath.Join(t.TempDir(), "ready.json")}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("%s (aiot %v), last log lines:\n%s", name, args, strings.Join(p.lines, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	bin, err := buildAiot()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(bin, append(p.args, "--ready-file", p.ready)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		defer close(done) // stderr ends when the process does
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, p.name+": "+sc.Text())
			if len(p.lines) > 80 {
				p.lines = p.lines[1:]
			}
			p.mu.Unlock()
		}
	}()
}

// awaitReady waits until the ready file says every part is bound and
// serving, and keeps the bound addresses.
func (p *proc) awaitReady(within time.Duration) {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	rep, err := readiness.Wait(ctx, p.ready, cmd.Process.Pid, done)
	if err != nil {
		p.t.Fatalf("%s not ready: %v", p.name, err)
	}
	p.mu.Lock()
	p.addrs = rep.Addrs
	p.mu.Unlock()
}

// addr is the bound address of one listener ("nats", "http", …).
func (p *proc) addr(what string) string {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.addrs[what]
	if a == "" {
		p.t.Fatalf("%s: no %s address in %v", p.name, what, p.addrs)
	}
	return a
}

// kill ends the process with SIGKILL (no goodbye) and waits for it.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	<-done
}

// restart starts the process again with the same arguments.
func (p *proc) restart(within time.Duration) {
	p.t.Helper()
	p.start()
	p.awaitReady(within)
}
