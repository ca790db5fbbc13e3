package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goaiot/goaiot/internal/readiness"
)

// Target is where a system under test listens. Empty fields are not
// measured; HTTP (goaiot) or WSURL (any Pyaiot-compatible broker) is needed
// for every scenario that has browsers.
type Target struct {
	// Kind is "goaiot" (default) or "pyaiot": a Pyaiot system sends no
	// "synced" or "result", so bench waits for quiet and matches commands by
	// the value update.
	Kind string `json:"kind"`
	// HTTP is goaiot's HTTP listener (http://127.0.0.1:8080): /ws and /node.
	HTTP string `json:"http,omitempty"`
	// WSURL is the browser websocket; default HTTP + /ws.
	WSURL string `json:"ws_url,omitempty"`
	// NodeURL is the websocket node endpoint; default HTTP + /node.
	NodeURL string `json:"node_url,omitempty"`
	// NATS is the bus URL: bus-stage measurements, raw NATS baseline and
	// `nats req` commands (goaiot only).
	NATS string `json:"nats,omitempty"`
	// MQTT is the MQTT broker host:port that MQTT nodes publish to.
	MQTT string `json:"mqtt,omitempty"`
	// CoAP and MQTTSN are the gateways' UDP host:port.
	CoAP   string `json:"coap,omitempty"`
	MQTTSN string `json:"mqttsn,omitempty"`
	// CoAPNodePort is the port the CoAP gateway reaches nodes at (5683
	// for a gateway in its default mode).
	CoAPNodePort int `json:"coap_node_port,omitempty"`
	// PIDs are the processes of an external system (Pyaiot's broker and
	// websocket gateway, say) whose CPU time and memory the results
	// report, summed; a self-started system's own process is measured
	// without them.
	PIDs []int `json:"pids,omitempty"`
}

// external reports whether any address was given (no child to start).
func (t *Target) external() bool {
	return t.HTTP != "" || t.WSURL != "" || t.NodeURL != "" || t.NATS != "" || t.MQTT != "" || t.CoAP != "" || t.MQTTSN != ""
}

func (t *Target) fill() error {
	if t.Kind == "" {
		t.Kind = KindGoaiot
	}
	if t.Kind != KindGoaiot && t.Kind != KindPyaiot {
		return fmt.Errorf("target kind %q: want goaiot or pyaiot", t.Kind)
	}
	if t.HTTP != "" {
		u, err := url.Parse(t.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("--http %q: want http://host:port", t.HTTP)
		}
		ws := "ws://" + u.Host
		if t.WSURL == "" {
			t.WSURL = ws + "/ws?ext=1&batch=1" // goaiot's page: extensions (synced, results), several messages per frame
		}
		if t.NodeURL == "" {
			t.NodeURL = ws + "/node"
		}
	}
	for _, s := range []string{t.WSURL, t.NodeURL, t.NATS} {
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
		if err := checkLoopbackHost(u.Hostname()); err != nil {
			return err
		}
	}
	for _, s := range []string{t.MQTT, t.CoAP, t.MQTTSN} {
		if s == "" {
			continue
		}
		host, _, err := net.SplitHostPort(s)
		if err != nil {
			return fmt.Errorf("%q: want host:port", s)
		}
		if err := checkLoopbackHost(host); err != nil {
			return err
		}
	}
	if t.CoAPNodePort == 0 {
		t.CoAPNodePort = 5683
	}
	for _, pid := range t.PIDs {
		if _, err := cpuTime(pid); err != nil {
			return fmt.Errorf("--pids: process %d: %w", pid, err)
		}
	}
	return nil
}

// checkLoopbackHost refuses a host outside 127.0.0.0/8.
func checkLoopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: bench only talks to 127.0.0.0/8", host)
	}
	return nil
}

// Target kinds.
const (
	KindGoaiot = "goaiot"
	KindPyaiot = "pyaiot"
)

// child is a process bench started: `aiot run`, a no-op CoAP server.
type child struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	mu   sync.Mutex
	tail []string // last lines of its stderr
	err  error
}

// newChild tracks a started process; run wait in a goroutine of its own.
func newChild(cmd *exec.Cmd) *child {
	return &child{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
}

// wait waits for the process to exit, records why and closes done.
func (c *child) wait() {
	err := c.cmd.Wait()
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
}

// Startup is how long `aiot run` took to be ready.
type Startup struct {
	// ReadyMS is from exec until its ready file appeared (every part bound
	// and serving), as seen by bench (polled every 5 ms).
	ReadyMS float64 `json:"ready_ms"`
	// ReportedMS is the "took_ms" of its ready file (from flag parsing to
	// every part ready).
	ReportedMS float64 `json:"reported_ms"`
	// IdleRSSMB is VmRSS 2 s after ready, with no node or browser.
	IdleRSSMB float64 `json:"idle_rss_mb"`
}

// startSystem starts `bin run` on random loopback ports with a temporary
// data directory, and waits for its ready file (package
// internal/readiness), which names the bound addresses. nodePort is the
// CoAP gateway's node port (the CoAP fleet's).
func startSystem(ctx context.Context, bin, dataDir string, nodePort int, extra []string) (c *child, t Target, st Startup, pprofURL string, err error) {
	readyFile := dataDir + ".ready.json"
	args := []string{"run", "--data", dataDir, "--log-format", "json", "--gateway-name", "bench",
		"--ready-file", readyFile,
		"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--coap-listen", "127.0.0.1:0", "--mqttsn-listen", "127.0.0.1:0",
		// the load tool's MQTT-SN and websocket nodes all come from
		// 127.0.0.1 and send as fast as asked
		"--mqttsn-new-nodes", "-1", "--ws-new-nodes", "-1", "--ws-value-rate", "-1",
		"--ws-frame-rate", "1e8", "--mqttsn-rate", "-1", "--mqttsn-node-rate", "-1",
		"--coap-discovery-rate", "-1", // the CoAP fleet's nodes share a few addresses
		"--coap-node-port", strconv.Itoa(nodePort)}
	args = append(args, extra...)
	t = Target{Kind: KindGoaiot, CoAPNodePort: nodePort}
	began := time.Now()
	c, rep, err := startChild(ctx, bin, args, readyFile)
	if err != nil {
		return nil, t, st, "", err
	}
	ready := time.Since(began)
	a := rep.Addrs
	t.NATS, t.MQTT, t.MQTTSN, t.CoAP = "nats://"+a["nats"], a["mqtt"], a["mqttsn"], a["coap"]
	t.HTTP = "http://" + a["http"]
	if p := a["pprof"]; p != "" {
		pprofURL = "http://" + p + "/debug/pprof/"
	}
	if err := t.fill(); err != nil {
		_ = c.stop()
		return nil, t, st, "", err
	}
	st = Startup{ReadyMS: ms(ready), ReportedMS: rep.TookMS}
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	rss, _, _ := memory(c.pid)
	st.IdleRSSMB = mb(rss)
	return c, t, st, pprofURL, nil
}

// startChild runs bin with args and waits for its ready file; the child
// then runs on, its stderr kept only as a tail for error messages.
func startChild(ctx context.Context, bin string, args []string, readyFile string) (*child, readiness.Report, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.SysProcAttr = childAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, readiness.Report{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, readiness.Report{}, fmt.Errorf("start %s: %w", bin, err)
	}
	c := newChild(cmd)
	go c.read(stderr)
	go c.wait()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := readiness.Wait(wctx, readyFile, c.pid, c.done)
	switch {
	case errors.Is(err, readiness.ErrExited):
		return nil, rep, fmt.Errorf("%s %s exited before it was ready: %v\n%s", bin, args[0], c.exitErr(), c.lastLines())
	case err != nil:
		c.stop()
		if ctx.Err() != nil {
			return nil, rep, ctx.Err()
		}
		return nil, rep, fmt.Errorf("%s %s not ready within 30 s\n%s", bin, args[0], c.lastLines())
	}
	return c, rep, nil
}

// childEnv is this process's environment without AIOT_* variables, so the
// child runs with exactly the flags bench gives it.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AIOT_") {
			env = append(env, kv)
		}
	}
	return env
}

// read keeps the last lines of r (the child's stderr) for error messages.
func (c *child) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		c.mu.Lock()
		c.tail = append(c.tail, sc.Text())
		if len(c.tail) > 40 {
			c.tail = c.tail[len(c.tail)-40:]
		}
		c.mu.Unlock()
	}
}

func (c *child) exitErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *child) lastLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// stop sends SIGTERM, and SIGKILL after 10 s.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("child killed after 10 s")
	}
	var ee *exec.ExitError
	if err := c.exitErr(); err != nil && !errors.As(err, &ee) {
		return err
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mb(b int64) float64         { return float64(b) / (1 << 20) }
