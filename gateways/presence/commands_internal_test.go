package presence

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus/bustest"
)

// gate is a run func whose commands block until released, recording the
// order they started in and the most that ran at once.
type gate struct {
	release       chan struct{}
	mu            sync.Mutex
	started       []string
	running, most atomic.Int64
	done          sync.WaitGroup
}

func newGate() *gate { return &gate{release: make(chan struct{})} }

func (g *gate) run(c command) {
	defer g.done.Done()
	n := g.running.Add(1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	g.mu.Lock()
	g.started = append(g.started, c.node+"/"+c.res)
	g.mu.Unlock()
	<-g.release
	g.running.Add(-1)
}

func (g *gate) submit(t *testing.T, p *commandPool, node, res string) error {
	t.Helper()
	g.done.Add(1)
	err := p.submit(command{node: node, res: res}, g.run)
	if err != nil {
		g.done.Done()
	}
	return err
}

func TestCommandPool(t *testing.T) {
	t.Run("one node's commands run one at a time, in order", func(t *testing.T) {
		p, g := newCommandPool(8, 100, 1000), newGate()
		for i := range 50 {
			if err := g.submit(t, p, "n1", fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		close(g.release)
		g.done.Wait()
		if g.most.Load() != 1 {
			t.Errorf("%d commands of one node ran at once, want 1", g.most.Load())
		}
		for i, s := range g.started {
			if want := fmt.Sprintf("n1/%d", i); s != want {
				t.Fatalf("command %d was %s, want %s (order %v)", i, s, want, g.started)
			}
		}
	})
	t.Run("at most the worker count runs at once", func(t *testing.T) {
		p, g := newCommandPool(4, 10, 1000), newGate()
		for i := range 40 {
			if err := g.submit(t, p, fmt.Sprint("n", i), "led"); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for g.running.Load() < 4 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		close(g.release)
		g.done.Wait()
		if got := g.most.Load(); got != 4 {
			t.Errorf("at most %d ran at once, want 4", got)
		}
		if len(g.started) != 40 {
			t.Errorf("%d commands ran, want 40", len(g.started))
		}
	})
	t.Run("a node's waiting commands are capped", func(t *testing.T) {
		p, g := newCommandPool(4, 3, 1000), newGate()
		// one running and three waiting are accepted, the fifth refused
		for i := range 4 {
			if err := g.submit(t, p, "n1", fmt.Sprint(i)); err != nil {
				t.Fatalf("command %d: %v", i, err)
			}
		}
		if err := g.submit(t, p, "n1", "4"); !errors.Is(err, ErrCommandsBusy) {
			t.Fatalf("fifth command: %v, want ErrCommandsBusy", err)
		}
		if err := g.submit(t, p, "n2", "0"); err != nil {
			t.Fatalf("another node refused: %v", err)
		}
		close(g.release)
		g.done.Wait()
		if len(g.started) != 5 {
			t.Errorf("%d commands ran, want the 5 accepted", len(g.started))
		}
	})
	t.Run("the gateway's commands are capped, and room comes back", func(t *testing.T) {
		p, g := newCommandPool(2, 10, 6), newGate()
		for i := range 6 {
			if err := g.submit(t, p, fmt.Sprint("n", i), "led"); err != nil {
				t.Fatalf("command %d: %v", i, err)
			}
		}
		if err := g.submit(t, p, "n99", "led"); !errors.Is(err, ErrCommandsBusy) {
			t.Fatalf("seventh command: %v, want ErrCommandsBusy", err)
		}
		close(g.release)
		g.done.Wait()
		if err := g.submit(t, p, "n99", "led"); err != nil {
			t.Fatalf("after the others finished: %v", err)
		}
		g.done.Wait()
		// A runner counts its command done just after run returns.
		bustest.Eventually(t, 10*time.Second, "the pool empty after every command finished", func() error {
			p.mu.Lock()
			defer p.mu.Unlock()
			return bustest.Want(p.queued == 0 && len(p.waiting) == 0, "queued", p.queued, "nodes", len(p.waiting))
		})
	})
}
