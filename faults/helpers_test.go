package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
)

const wait = 20 * time.Second

// nodeIP is a loopback address of this test process, 127.A.B.n with A.B
// from the process id, away from the addresses other packages' tests use
// while they run at the same time.
func nodeIP(n int) string {
	pid := os.Getpid()
	return fmt.Sprintf("127.%d.%d.%d", 180+pid%60, (pid/60)%250+1, n)
}

// freePort returns a TCP port on 127.0.0.1 free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// natsServer is an embedded nats-server that a test can stop and start
// again on the same port with the same data directory.
type natsServer struct {
	t      testing.TB
	listen string
	data   string
	srv    *bus.Server
}

func newNATSServer(t testing.TB) *natsServer {
	t.Helper()
	s := &natsServer{t: t, listen: fmt.Sprintf("127.0.0.1:%d", freePort(t)), data: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	nc := s.connect("setup")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := bus.EnsureNodesStream(ctx, js, bus.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *natsServer) url() string { return "nats://" + s.listen }

func (s *natsServer) start() {
	s.t.Helper()
	srv, err := bus.NewServer(bus.ServerConfig{Name: "faults", DataDir: s.data, Listen: s.listen,
		Logger: bustest.Quiet()})
	if err != nil {
		s.t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.srv = srv
}

func (s *natsServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
}

// connect opens a connection by URL the way every aiot part does
// (reconnecting forever, buffering publishes while disconnected).
func (s *natsServer) connect(name string) *nats.Conn {
	s.t.Helper()
	nc, err := bus.Connect(bus.ConnectConfig{Name: name, URL: s.url(), Logger: bustest.Quiet()})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	return nc
}

// stored counts the messages the NODES stream holds on subject.
func stored(t testing.TB, nc *nats.Conn, subject string) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0
	}
	return info.State.Subjects[subject]
}

// lastState is the last $state of node in the stream ("" if none).
func lastState(t testing.TB, nc *nats.Conn, node string) string {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		return ""
	}
	m, err := st.GetLastMsgForSubject(ctx, bus.NodeState(node))
	if err != nil {
		return ""
	}
	s, err := bus.ParseState(m.Data)
	if err != nil {
		return ""
	}
	return s.State
}

// values collects the values published on subject, in arrival order.
type values struct {
	ch <-chan *nats.Msg
}

func collect(t testing.TB, nc *nats.Conn, subject string) *values {
	t.Helper()
	ch := make(chan *nats.Msg, 1<<16)
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &values{ch: ch}
}

// until reads values until want distinct ones arrived or the wait is over;
// it returns the distinct values seen and the duplicates.
func (v *values) until(want int, within time.Duration) (seen map[string]bool, dups int) {
	seen = map[string]bool{}
	deadline := time.After(within)
	for len(seen) < want {
		select {
		case m := <-v.ch:
			val, err := bus.ParseValue(m.Data)
			if err != nil {
				continue
			}
			if seen[val.Text()] {
				dups++
			}
			seen[val.Text()] = true
		case <-deadline:
			return seen, dups
		}
	}
	return seen, dups
}

// waitState waits for a $state of node equal to state on ch.
func waitState(t testing.TB, ch <-chan *nats.Msg, state string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-ch:
			var s bus.State
			if json.Unmarshal(m.Data, &s) == nil && s.State == state {
				return
			}
		case <-deadline:
			t.Fatalf("no $state %s within %s", state, within)
		}
	}
}

// checkHistory reads subject's stored values and checks they are "1"…"n",
// each once, in order.
func checkHistory(t testing.TB, nc *nats.Conn, subject string, n int) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, bus.NodesStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(n + 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		v, err := bus.ParseValue(m.Data())
		if err != nil {
			t.Fatalf("stored value %q: %v", m.Data(), err)
		}
		got = append(got, v.Text())
	}
	if len(got) != n {
		t.Fatalf("%d values stored, want %d", len(got), n)
	}
	for i, v := range got {
		if v != strconv.Itoa(i+1) {
			t.Fatalf("value %d is %q, want %d (stored: %v)", i, v, i+1, got)
		}
	}
}

// lastMsg is the data of the last message stored on subject.
func lastMsg(nc *nats.Conn, subject string) ([]byte, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bus.NodesStream)
	if err != nil {
		return nil, err
	}
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
