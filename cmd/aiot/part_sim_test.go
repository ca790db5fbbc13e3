package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/readiness"
)

// buildAiot builds the binary once per test run.
var buildAiot = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "aiot-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "aiot")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// proc is a running aiot binary, started with --ready-file.
type proc struct {
	cmd       *exec.Cmd
	readyFile string
	mu        sync.Mutex
	log       []string
	report    *readiness.Report // once read
	done      chan error        // the exit status, put back by each reader
	exited    chan struct{}     // closed at exit
}

// newProc starts `aiot args… --ready-file F`; startAiot and
// startMultisite stop it when the test ends.
func newProc(t *testing.T, args ...string) *proc {
	t.Helper()
	bin, err := buildAiot()
	if err != nil {
		t.Fatal(err)
	}
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	p := &proc{cmd: exec.Command(bin, append(args, "--ready-file", readyFile)...), readyFile: readyFile,
		done: make(chan error, 1), exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.scan(stderr)
	return p
}

// startAiot runs `aiot args…` until the test ends.
func startAiot(t *testing.T, args ...string) *proc {
	t.Helper()
	p := newProc(t, args...)
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("aiot %s log:\n%s", args[0], p.logText())
		}
	})
	return p
}

func (p *proc) scan(r interface{ Read([]byte) (int, error) }) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.log = append(p.log, sc.Text())
		p.mu.Unlock()
	}
	p.done <- p.cmd.Wait()
	close(p.exited)
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// ready waits for the process's ready file (every part bound and serving).
func (p *proc) ready(t *testing.T) readiness.Report {
	t.Helper()
	p.mu.Lock()
	r := p.report
	p.mu.Unlock()
	if r != nil {
		return *r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := readiness.Wait(ctx, p.readyFile, p.cmd.Process.Pid, p.exited)
	if err != nil {
		t.Fatalf("aiot not ready: %v\n%s", err, p.logText())
	}
	p.mu.Lock()
	p.report = &rep
	p.mu.Unlock()
	return rep
}

// url is where the ready process listens for what ("http", "nats",
// "mqtt", "leafnodes"…): its URL when it has one, else host:port.
func (p *proc) url(t *testing.T, what string) string {
	t.Helper()
	rep := p.ready(t)
	if u, ok := rep.URLs[what]; ok {
		return u
	}
	a, ok := rep.Addrs[what]
	if !ok {
		t.Fatalf("aiot has no %s listener: %+v", what, rep)
	}
	return a
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("aiot exit: %v", err)
		}
		p.done <- err
	case <-time.After(10 * time.Second):
		t.Fatalf("aiot did not stop within 10 s")
	}
}

// randomPorts are the listener flags of a system on random loopback ports
// (port 0: the ready file names them).
func randomPorts(t *testing.T) []string {
	return []string{"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--coap-listen", "127.0.0.1:0", "--mqttsn-listen", "127.0.0.1:0", "--data", t.TempDir(),
		"--log-level", "info"}
}

// freeUDP returns a loopback UDP address free a moment ago.
func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// simProtocols are the protocols whose gateway is a part of aiot, with the
// id infix of their simulated nodes. MQTT-SN nodes also need the MQTT node
// logic (part mqtt), which gives them their $state.
func simProtocols() map[string]string {
	have := map[string]bool{}
	for _, p := range parts() {
		have[p.name] = true
	}
	out := map[string]string{}
	for _, p := range []string{"coap", "mqtt", "ws"} {
		if have[p] {
			out[p] = p
		}
	}
	if have["mqttsn"] && have["mqtt"] {
		out["mqttsn"] = "mqttsn"
	}
	return out
}

// waitOnline waits until every id has $state online in the NODES stream
// (which keeps the last state of each node, so no message is missed).
func waitOnline(t *testing.T, natsURL string, ids []string, opts ...nats.Option) map[string]bus.State {
	t.Helper()
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]bus.State{}
	for {
		missing := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return got[id].State == bus.StateOnline })
		if len(missing) == 0 {
			return got
		}
		c, err := js.OrderedConsumer(ctx, bus.NodesStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{"node.*.$state"}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		})
		if err != nil {
			t.Fatalf("consumer: %v", err)
		}
		batch, err := c.FetchNoWait(10000)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		for m := range batch.Messages() {
			if st, err := bus.ParseState(m.Data()); err == nil {
				got[strings.Split(m.Subject(), ".")[1]] = st
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not online within 30 s: %v (states: %v)", missing, got)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func simIDs(prefix string, protocols map[string]string, n int) []string {
	var ids []string
	for _, infix := range protocols {
		for i := range n {
			ids = append(ids, fmt.Sprintf("%s-%s-%d", prefix, infix, i+1))
		}
	}
	slices.Sort(ids)
	return ids
}

func TestRunDemo(t *testing.T) {
	protocols := simProtocols()
	if len(protocols) == 0 {
		t.Fatal("no gateway part: nothing to simulate")
	}
	args := append([]string{"run", "--demo", "--sim-coap-from", testLoopback()}, randomPorts(t)...)
	p := startAiot(t, args...)
	natsURL := p.url(t, "nats")
	p.url(t, "http") // announced once the NODES stream exists
	ids := simIDs("sim", protocols, 3)
	if _, ok := protocols["ws"]; ok {
		ids = append(ids, "sim-robot-1", "sim-ribot-1", "sim-js-1", "sim-camera-1") // --widget-nodes 1
	}
	states := waitOnline(t, natsURL, ids)
	for id, st := range states {
		if !strings.HasPrefix(id, "sim-coap-") && !strings.HasPrefix(id, "sim-mqtt") && st.Protocol != bus.ProtocolWebSocket {
			t.Errorf("%s: protocol %q", id, st.Protocol)
		}
	}
	t.Logf("online: %d nodes of %d protocols", len(states), len(protocols))
	if _, ok := protocols["ws"]; ok {
		expectCommand(t, natsURL, "sim-robot-1", "robot", "u")
		expectCommand(t, natsURL, "sim-ribot-1", "ribot", "12:-7:5\n")
	}
	p.stop(t)
}

// expectCommand sends a command over NATS, as the dashboard does, and
// wants the node's "ok".
func expectCommand(t *testing.T, natsURL, id, res, payload string) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m, err := nc.Request(bus.GatewaySet(id, res), []byte(payload), 10*time.Second)
	if err != nil {
		t.Fatalf("%s %s command: %v", id, res, err)
	}
	if r, err := bus.ParseReply(m.Data); err != nil || !r.OK {
		t.Errorf("%s %s %q: reply %s (%v)", id, res, payload, m.Data, err)
	}
}

// TestRunDemoCoAPOnEveryAddress: a CoAP gateway on every address of the
// nodes' port (like the default :5683) leaves them no port of their own, so
// the demo makes the gateway answer at the nodes' source ports.
func TestRunDemoCoAPOnEveryAddress(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeUDP(t))
	args := append(randomPorts(t), "--coap-listen", ":"+port, "--sim-coap-node-port", port,
		"--ws-nodes", "0", "--widget-nodes", "0", "--mqtt-nodes", "0", "--mqttsn-nodes", "0", "--coap-nodes", "2")
	p := startAiot(t, append([]string{"run", "--demo", "--sim-coap-from", testLoopback()}, args...)...)
	natsURL := p.url(t, "nats")
	p.url(t, "http")
	for id, st := range waitOnline(t, natsURL, []string{"sim-coap-1", "sim-coap-2"}) {
		if st.Protocol != bus.ProtocolCoAP {
			t.Errorf("%s: protocol %q", id, st.Protocol)
		}
	}
	if !strings.Contains(p.logText(), "--coap-node-port 0") {
		t.Errorf("the demo did not say it switched the CoAP gateway to source ports")
	}
	// Discovery and commands must work on a wildcard listener in source-port
	// mode too (the README's demo): the node's answers reach the gateway.
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m, err := nc.Request(bus.GatewaySet("sim-coap-1", "led"), []byte("1"), 10*time.Second)
	if err != nil {
		t.Fatalf("led command: %v", err)
	}
	if r, err := bus.ParseReply(m.Data); err != nil || !r.OK {
		t.Fatalf("led command reply %s (%v)", m.Data, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, bus.NodeValue("sim-coap-1", "board")); err != nil {
		t.Errorf("board never discovered: %v", err)
	}
	if strings.Contains(p.logText(), "coap request rejected") {
		t.Errorf("the gateway rejected its own nodes' answers as requests")
	}
}

// testLoopback is a first address for simulated CoAP nodes that other
// tests running at the same time are unlikely to use.
func testLoopback() string {
	pid := os.Getpid()
	return fmt.Sprintf("127.%d.%d.1", 100+pid%150, (pid/150)%250+1)
}

func TestSimAgainstRunningSystem(t *testing.T) {
	sysProc := startAiot(t, append([]string{"run"}, randomPorts(t)...)...)
	natsURL, httpURL := sysProc.url(t, "nats"), sysProc.url(t, "http")
	args := []string{"sim", "--nats", natsURL, "--sim-prefix", "far", "--ws-nodes", "2", "--coap-nodes", "0", "--mqtt-nodes", "0", "--mqttsn-nodes", "0",
		"--sim-ws-url", "ws" + strings.TrimPrefix(httpURL, "http") + "/node"}
	sim := startAiot(t, args...)
	waitOnline(t, natsURL, simIDs("far", map[string]string{"ws": "ws"}, 2))
	sim.stop(t)
}
