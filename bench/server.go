package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
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
			t.WSURL = ws + "/ws?ext=1" // goaiot's extensions: synced, results
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
	// ReadyMS is from exec until every listener (NATS, MQTT, HTTP, CoAP,
	// MQTT-SN) has logged its address, as seen by bench.
	ReadyMS float64 `json:"ready_ms"`
	// ReportedMS is the "took" of its "ready" line (from flag parsing to
	// the parts started).
	ReportedMS float64 `json:"reported_ms"`
	// IdleRSSMB is VmRSS 2 s after ready, with no node or browser.
	IdleRSSMB float64 `json:"idle_rss_mb"`
}

// startSystem starts `bin run` on random loopback ports with a temporary
// data directory, and waits for its "ready" line. nodePort is the CoAP
// gateway's node port (the CoAP fleet's).
func startSystem(ctx context.Context, bin, dataDir string, nodePort int, extra []string) (c *child, t Target, st Startup, pprofURL string, err error) {
	args := []string{"run", "--data", dataDir, "--log-format", "json", "--gateway-name", "bench",
		"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--coap-listen", "127.0.0.1:0", "--mqttsn-listen", "127.0.0.1:0",
		// the load tool's MQTT-SN and websocket nodes all come from
		// 127.0.0.1 and send as fast as asked
		"--mqttsn-new-nodes", "-1", "--ws-new-nodes", "-1", "--ws-value-rate", "-1",
		"--coap-discovery-rate", "-1", // the CoAP fleet's nodes share a few addresses
		"--coap-node-port", strconv.Itoa(nodePort)}
	args = append(args, extra...)
	t = Target{Kind: KindGoaiot, CoAPNodePort: nodePort}
	var ready, took time.Duration
	var readyLine bool
	began := time.Now()
	c, err = startChild(ctx, bin, args, func(line map[string]any) bool {
		switch line["msg"] {
		case "listening":
			switch line["what"] {
			case "nats":
				t.NATS, _ = line["url"].(string)
			case "mqtt":
				t.MQTT, _ = line["addr"].(string)
			case "mqtt-sn":
				t.MQTTSN = addrOf(line["addr"])
			case "http":
				t.HTTP, _ = line["url"].(string)
			case "pprof":
				pprofURL, _ = line["url"].(string)
			}
		case "coap gateway listening":
			t.CoAP = addrOf(line["udp"])
		case "ready":
			readyLine = true
			switch v := line["took"].(type) {
			case string:
				took, _ = time.ParseDuration(v)
			case float64:
				took = time.Duration(v)
			}
		}
		// Gateways bind their sockets as they start running, just after
		// the "ready" line: ready is when every listener is up.
		if readyLine && t.CoAP != "" && t.MQTTSN != "" && t.HTTP != "" && (pprofURL != "" || !slices.Contains(extra, "--pprof")) {
			ready = time.Since(began)
			return true
		}
		return false
	})
	if err != nil {
		return nil, t, st, "", err
	}
	if err := t.fill(); err != nil {
		_ = c.stop()
		return nil, t, st, "", err
	}
	st = Startup{ReadyMS: ms(ready), ReportedMS: ms(took)}
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	rss, _, _ := memory(c.pid)
	st.IdleRSSMB = mb(rss)
	return c, t, st, pprofURL, nil
}

// addrOf reads an address logged as a string or as a JSON net.UDPAddr.
func addrOf(v any) string {
	switch a := v.(type) {
	case string:
		return a
	case map[string]any:
		ip, _ := a["IP"].(string)
		port, _ := a["Port"].(float64)
		if ip != "" {
			return net.JoinHostPort(ip, strconv.Itoa(int(port)))
		}
	}
	return ""
}

// startChild runs bin with args and feeds each JSON line of its stderr to
// until, until it returns true; then the child runs on, its output kept
// only as a tail for error messages.
func startChild(ctx context.Context, bin string, args []string, until func(map[string]any) bool) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := newChild(cmd)
	readyc := make(chan struct{})
	go c.read(stderr, until, readyc)
	go c.wait()
	select {
	case <-readyc:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s %s exited before it was ready: %v\n%s", bin, args[0], c.exitErr(), c.lastLines())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s %s not ready within 30 s\n%s", bin, args[0], c.lastLines())
	}
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

func (c *child) read(r io.Reader, until func(map[string]any) bool, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	waiting := true
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		c.tail = append(c.tail, line)
		if len(c.tail) > 40 {
			c.tail = c.tail[len(c.tail)-40:]
		}
		c.mu.Unlock()
		if !waiting {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && until(m) {
			waiting = false
			close(ready)
		}
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
