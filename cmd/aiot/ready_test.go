package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
	"github.com/goaiot/goaiot/internal/coaptest"
	"github.com/goaiot/goaiot/internal/readiness"
	"github.com/goaiot/goaiot/services/dashboard"
)

// healthz reads GET url/healthz.
func healthz(t *testing.T, url string) (int, dashboard.Health) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h dashboard.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("healthz body: %v", err)
	}
	return resp.StatusCode, h
}

// TestReadyFileNamesBoundListeners: with every listener on port 0, the
// ready file names the ports actually bound — each one answers its own
// protocol there — /healthz says the same, and the file goes at exit.
func TestReadyFileNamesBoundListeners(t *testing.T) {
	p := startMultisite(t, append([]string{"run"}, randomPorts(t)...)...)
	rep := p.ready(t)
	if rep.PID != p.cmd.Process.Pid || rep.TookMS <= 0 {
		t.Errorf("report %+v: want pid %d and a start-up time", rep, p.cmd.Process.Pid)
	}
	for _, name := range []string{"http", "nats", "mqtt", "coap", "mqttsn"} {
		_, port, err := net.SplitHostPort(rep.Addrs[name])
		if n, _ := strconv.Atoi(port); err != nil || n == 0 {
			t.Errorf("%s at %q: want a bound host:port", name, rep.Addrs[name])
		}
	}
	t.Run("http", func(t *testing.T) {
		code, h := healthz(t, rep.URLs["http"])
		if code != 200 || !h.Ready || h.Status != "ok" || !maps.Equal(h.Addrs, rep.Addrs) {
			t.Errorf("healthz %d %+v, want 200, ready, the file's addresses %v", code, h, rep.Addrs)
		}
	})
	t.Run("nats", func(t *testing.T) {
		nc, err := nats.Connect(rep.URLs["nats"])
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	})
	t.Run("mqtt", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", rep.Addrs["mqtt"], 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("coap", func(t *testing.T) {
		gw, err := net.ResolveUDPAddr("udp", rep.Addrs["coap"])
		if err != nil {
			t.Fatal(err)
		}
		node := coaptest.NewPeer(t, "127.0.0.1", gw)
		node.Send(t, coaptest.Request(message.NonConfirmable, 1, "r1", codes.POST, "/alive", "alive:readycheck"))
		if got := node.Until(t, coaptest.Token("r1"), 10*time.Second); got[len(got)-1].Code != codes.Changed {
			t.Errorf("/alive answered %v, want 2.04", got)
		}
	})
	t.Run("mqttsn", func(t *testing.T) {
		c, err := net.Dial("udp", rep.Addrs["mqttsn"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, _ := packet.Marshal(&packet.SearchGW{Radius: 1})
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if pk, err := packet.Unmarshal(buf[:n]); err != nil {
			t.Errorf("answer %x: %v", buf[:n], err)
		} else if _, ok := pk.(*packet.GWInfo); !ok {
			t.Errorf("SEARCHGW answered %T, want GWINFO", pk)
		}
	})
	p.stop(t)
	if _, err := os.Stat(p.readyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file after exit: %v, want it removed", err)
	}
}

// gate is a part whose Ready the test opens.
type gate struct{ open chan struct{} }

func (g gate) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (g gate) Ready() <-chan struct{}        { return g.open }
func (g gate) part(built chan<- *system) part {
	return part{name: "gate", register: func(*flag.FlagSet) func(*system) (runner, error) {
		return func(s *system) (runner, error) { built <- s; return g, nil }
	}}
}

// TestHealthzNotReadyBeforeBound: while one part is not ready, /healthz
// (already served) answers 503 "starting" and no ready file exists; once
// it is, both say ready with the same addresses.
func TestHealthzNotReadyBeforeBound(t *testing.T) {
	readyFile := filepath.Join(t.TempDir(), "ready.json")
	if err := os.WriteFile(readyFile, []byte(`{"ready":true,"pid":1}`), 0o644); err != nil { // a stale one
		t.Fatal(err)
	}
	g, built := gate{open: make(chan struct{})}, make(chan *system, 1)
	args := []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--mqtt-listen", "", "--ready-file", readyFile}
	bustest.Run(t, func(ctx context.Context) error {
		return startTopology(ctx, args, io.Discard, "aiot test", []part{dashboardPart(), g.part(built)}, true, nil)
	})
	var sys *system
	select {
	case sys = <-built:
	case <-time.After(30 * time.Second):
		t.Fatal("parts not built")
	}
	<-sys.httpBound
	url := "http://" + sys.httpAddr.String()
	bustest.Eventually(t, 30*time.Second, "the dashboard serving /healthz", func() error {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return bustest.Want(err == nil)
	})
	if code, h := healthz(t, url); code != 503 || h.Ready || h.Status != "starting" {
		t.Errorf("healthz before ready: %d %+v, want 503 starting, not ready", code, h)
	}
	if _, err := os.Stat(readyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file before ready: %v, want none (the stale one removed)", err)
	}
	close(g.open)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := readiness.Wait(ctx, readyFile, os.Getpid(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Addrs["http"] != sys.httpAddr.String() || rep.URLs["http"] != url {
		t.Errorf("report %+v, want http at %s", rep, sys.httpAddr)
	}
	if code, h := healthz(t, url); code != 200 || !h.Ready || !maps.Equal(h.Addrs, rep.Addrs) {
		t.Errorf("healthz once ready: %d %+v, want 200 with %v", code, h, rep.Addrs)
	}
}
