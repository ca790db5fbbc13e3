package bus_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

func newServer(t *testing.T, cfg bus.ServerConfig) (*bus.Server, error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = bustest.Logger(t)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	s, err := bus.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(s.Shutdown)
	return s, nil
}

func TestServerListeners(t *testing.T) {
	s, err := newServer(t, bus.ServerConfig{Listen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0", LeafListen: "127.0.0.1:0", MonitorListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	for name, addr := range map[string]string{"mqtt": s.MQTTAddr(), "leaf": s.LeafAddr(), "monitor": s.MonitorAddr()} {
		t.Run(name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				t.Fatalf("%s listener %q: %v", name, addr, err)
			}
			c.Close()
		})
	}
	t.Run("nats", func(t *testing.T) {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
	})
}

func TestServerInProcessOnly(t *testing.T) {
	s, err := newServer(t, bus.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if s.ClientURL() != "" || s.MQTTAddr() != "" {
		t.Fatalf("listeners open: %q %q", s.ClientURL(), s.MQTTAddr())
	}
	nc, err := bus.Connect(bus.ConnectConfig{Name: "t", Server: s, Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(2 * time.Second); err != nil || string(m.Data) != "hi" {
		t.Fatalf("in-process round trip: %v %v", m, err)
	}
}

func TestServerBadConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  bus.ServerConfig
		want string
	}{
		{"nats port in use", bus.ServerConfig{Listen: busy.Addr().String()}, "address already in use"},
		{"mqtt port in use", bus.ServerConfig{Listen: "127.0.0.1:0", MQTTListen: busy.Addr().String()}, "address already in use"},
		{"data dir is a file", bus.ServerConfig{DataDir: filepath.Join(file, "sub")}, "data dir"},
		{"bad listen", bus.ServerConfig{Listen: "nonsense"}, "nats listen"},
		{"bad port", bus.ServerConfig{Listen: "127.0.0.1:99999"}, "bad port"},
		{"bad leaf url", bus.ServerConfig{LeafRemotes: []bus.LeafRemote{{URL: "http://hub:7422"}}}, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := newServer(t, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			t.Logf("failed in %s: %v", time.Since(start), err)
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"nats://127.0.0.1:4222", true},
		{"tls://hub.example:4222", true},
		{"ws://127.0.0.1:8080", true},
		{"", false},
		{"http://127.0.0.1:4222", false},
		{"nats://", false},
		{"::bad", false},
		{"nats://a:4222,nats://b:4222, nats://c:4222", true},
		{"nats://a:4222,http://b:4222", false},
		{"nats://a:4222,", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if err := bus.CheckURL(tt.url); (err == nil) != tt.ok {
				t.Fatalf("CheckURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestConnectRetriesUntilServerUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	nc, err := bus.Connect(bus.ConnectConfig{Name: "late", URL: "nats://" + addr, Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatalf("connect to a server not up yet must not fail: %v", err)
	}
	defer nc.Close()
	if _, err := newServer(t, bus.ServerConfig{Listen: addr}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("client never connected once the server was up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodesStreamSettings(t *testing.T) {
	s := bustest.StartServer(t)
	js := bustest.JetStream(t, bustest.Connect(t, s))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := bus.StreamConfig{History: 3, MaxAge: time.Hour}
	for i := range 2 { // idempotent
		st, err := bus.EnsureNodesStream(ctx, js, cfg)
		if err != nil {
			t.Fatalf("ensure #%d: %v", i, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.MaxMsgsPerSubject != 3 || info.Config.MaxAge != time.Hour || info.Config.Subjects[0] != "node.>" {
			t.Fatalf("config = %+v", info.Config)
		}
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, bus.NodeValue("n1", "temperature"), mustJSON(t, bus.StringValue(string(rune('0'+i)), time.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("stream keeps %d messages for one subject, want 3", info.State.Msgs)
	}
	last, err := st.GetLastMsgForSubject(ctx, bus.NodeValue("n1", "temperature"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := bus.ParseValue(last.Data); v.Text() != "9" {
		t.Fatalf("last value %q, want 9", v.Text())
	}
	t.Run("bad settings", func(t *testing.T) {
		if _, err := bus.EnsureNodesStream(ctx, js, bus.StreamConfig{History: 0}); err == nil {
			t.Fatal("history 0 accepted")
		}
	})
}

func TestValueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	subject := bus.NodeValue("AB582D8277D4D97", "temperature")
	first := bustest.StartServer(t, bustest.WithDataDir(dir))
	nc := bustest.Connect(t, first)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subject, mustJSON(t, bus.StringValue("21.5°C", time.Now()))); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	first.Shutdown()

	second := bustest.StartServer(t, bustest.WithDataDir(dir))
	js2 := bustest.JetStream(t, bustest.Connect(t, second))
	st, err := js2.Stream(ctx, bus.NodesStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("value lost across restart: %v", err)
	}
	if v, _ := bus.ParseValue(m.Data); v.Text() != "21.5°C" {
		t.Fatalf("after restart %q, want 21.5°C", v.Text())
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A max age shorter than the two-minute duplicates window is accepted
// (`--history-age 1m`): the window follows the age down.
func TestNodesStreamShortMaxAge(t *testing.T) {
	s := bustest.StartServer(t)
	js := bustest.JetStream(t, bustest.Connect(t, s))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		name           string
		maxAge, window time.Duration
	}{
		{"one minute", time.Minute, time.Minute},
		{"no age limit", 0, 2 * time.Minute},
		{"a day", 24 * time.Hour, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := bus.EnsureNodesStream(ctx, js, bus.StreamConfig{History: 10, MaxAge: tt.maxAge})
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.MaxAge != tt.maxAge || info.Config.Duplicates != tt.window {
				t.Fatalf("max age %s, duplicates window %s; want %s and %s", info.Config.MaxAge, info.Config.Duplicates, tt.maxAge, tt.window)
			}
		})
	}
}

// A NoEcho connection gets what others publish, never its own messages.
func TestConnectNoEcho(t *testing.T) {
	srv := bustest.StartServer(t)
	tests := []struct {
		name     string
		noEcho   bool
		wantOwns bool
	}{
		{"default: its own messages come back", false, true},
		{"no echo: only the others'", true, false},
	}
	other := bustest.Connect(t, srv)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := bus.Connect(bus.ConnectConfig{Name: "echo-test", Server: srv, Logger: bustest.Logger(t), NoEcho: tt.noEcho})
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			got := bustest.Subscribe(t, nc, "echo.test")
			if err := nc.Publish("echo.test", []byte("own")); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := other.Publish("echo.test", []byte("other")); err != nil {
				t.Fatal(err)
			}
			// One connection's messages arrive in order: its own first, if at all.
			first := string(bustest.Next(t, got, "echo.test", 10*time.Second).Data)
			if (first == "own") != tt.wantOwns {
				t.Fatalf("first message %q, want own back: %v", first, tt.wantOwns)
			}
		})
	}
}
