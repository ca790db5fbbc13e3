package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/ws/wssim"
)

// simPart runs simulated nodes of every protocol: `aiot sim` points them at
// a running system, `aiot run --demo` at the process's own listeners.
func simPart() part {
	return part{
		name:     "sim",
		summary:  "simulated nodes of every protocol (CoAP, MQTT, MQTT-SN, websocket) pointed at a running system",
		register: registerSim,
	}
}

// simFlags are the sim's own flags.
type simFlags struct {
	wsNodes  int
	wsURL    string
	interval time.Duration
	prefix   string
}

func registerSim(fs *flag.FlagSet) func(*system) (runner, error) {
	var f simFlags
	fs.IntVar(&f.wsNodes, "ws-nodes", 3, "simulated websocket nodes (aiot sim, aiot run --demo)")
	fs.StringVar(&f.wsURL, "sim-ws-url", "ws://127.0.0.1:8080/node", "aiot sim: the websocket gateway's node URL")
	fs.DurationVar(&f.interval, "sim-interval", 5*time.Second, "aiot sim, --demo: sensor period of the simulated nodes")
	fs.StringVar(&f.prefix, "sim-prefix", "sim", "aiot sim, --demo: simulated node ids are <prefix>-<protocol>-<n>")
	return func(sys *system) (runner, error) {
		if sys.all && !sys.opts.demo {
			return noSim{}, nil
		}
		if f.wsNodes < 0 {
			return nil, errors.New("negative node count")
		}
		if err := bus.ValidateNodeID(f.prefix + "-ws-1"); err != nil {
			return nil, fmt.Errorf("--sim-prefix: %w", err)
		}
		nc, err := sys.connect("sim")
		if err != nil {
			return nil, err
		}
		return &simFleet{flags: f, sys: sys, nc: nc, log: sys.log.With("part", "sim")}, nil
	}
}

// noSim is the sim part of `aiot run` without --demo.
type noSim struct{}

func (noSim) Run(context.Context) error { return nil }

// simFleet runs every simulated node until ctx ends.
type simFleet struct {
	flags simFlags
	sys   *system
	nc    *nats.Conn
	log   *slog.Logger
}

// simNode is one simulated node of any protocol.
type simNode struct {
	id       string
	protocol string
	run      func(ctx context.Context) error
}

// simTargets are the gateway addresses the nodes talk to; empty skips a
// protocol.
type simTargets struct {
	wsURL string
}

// Run builds the nodes once the gateways listen, runs them, and logs when
// they are all online.
func (f *simFleet) Run(ctx context.Context) error {
	t, err := f.targets(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	nodes, err := f.nodes(t)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		f.log.Warn("no simulated nodes to run")
		return nil
	}
	stop := f.watch(nodes)
	defer stop()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			if err := n.run(ctx); err != nil {
				f.log.Error("simulated node stopped", "node", n.id, "protocol", n.protocol, "err", err)
			}
		})
	}
	f.log.Info("simulated nodes started", "count", len(nodes), "ws", t.wsURL)
	wg.Wait()
	return nil
}

// targets are the flags under `aiot sim`; under `aiot run --demo` they are
// the addresses this process's listeners are actually bound to (they may
// have been given as port 0).
func (f *simFleet) targets(ctx context.Context) (simTargets, error) {
	if !f.sys.all {
		return simTargets{wsURL: f.flags.wsURL}, nil
	}
	var t simTargets
	select {
	case <-f.sys.httpBound:
	case <-ctx.Done():
		return t, nil
	}
	if _, ok := f.sys.built["ws"]; ok && f.sys.httpAddr != nil {
		t.wsURL = "ws://" + dialable(f.sys.httpAddr.String()) + wsPath
	}
	return t, nil
}

// dialable turns a listen address into one to dial: an unspecified host
// (":8080", "[::]:8080", "0.0.0.0:8080") becomes 127.0.0.1.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// nodes builds the simulated nodes for t.
func (f *simFleet) nodes(t simTargets) ([]simNode, error) {
	var out []simNode
	if t.wsURL != "" {
		for i := range f.flags.wsNodes {
			id := fmt.Sprintf("%s-ws-%d", f.flags.prefix, i+1)
			n, err := wssim.New(wssim.Config{
				URL: t.wsURL, ID: id, Name: fmt.Sprintf("WebSocket node %d", i+1),
				Logger: f.log, SensorInterval: f.flags.interval,
			})
			if err != nil {
				return nil, err
			}
			out = append(out, simNode{id: id, protocol: bus.ProtocolWebSocket, run: n.Run})
		}
	}
	return out, nil
}

// watch logs once every simulated node has been seen online on the bus.
func (f *simFleet) watch(nodes []simNode) (stop func()) {
	want := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		want[n.id] = true
	}
	var mu sync.Mutex
	online := map[string]bool{}
	sub, err := f.nc.Subscribe("node.*.$state", func(m *nats.Msg) {
		id := strings.Split(m.Subject, ".")[1]
		st, err := bus.ParseState(m.Data)
		if !want[id] || err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		was := len(online) == len(want)
		if st.State == bus.StateOffline {
			delete(online, id)
		} else {
			online[id] = true
		}
		if now := len(online) == len(want); now && !was {
			f.log.Info("all simulated nodes online", "count", len(want))
		}
	})
	if err != nil {
		f.log.Warn("cannot watch the simulated nodes' state", "err", err)
		return func() {}
	}
	return func() { _ = sub.Unsubscribe() }
}
