package mqttsn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// benchPayload is one sensor value as Pyaiot's firmware sends it (19 bytes).
const benchPayload = `{"value":"21.5°C"}`

// BenchmarkIngest measures MQTT-SN values per second into NATS: one UDP
// client (node "bench", the only topics it may publish on are its own)
// publishes node/bench/temperature, a NATS subscriber counts arrivals.
// Without -stored the NODES stream is deleted first, so this is plain NATS
// (like mosquitto, nothing stored); the -stored variants keep it, and the
// stream writes every value to disk, as it does every real value. The
// per-client value rate is off. QoS 0 keeps at most 64 values between the socket and the
// subscriber (so UDP buffers never overflow); QoS 1 waits for each PUBACK
// like RIOT's emcute (stopwait), or keeps 20 in flight like mosquitto_pub.
//
//	go test -run '^$' -bench 'Ingest|Mosquitto' -benchtime 20000x -count 5 ./gateways/mqttsn
func BenchmarkIngest(b *testing.B) {
	for _, bc := range []struct {
		name   string
		stored bool
		qos    int
		window int
	}{
		{"qos0", false, 0, 64},
		{"qos1-stopwait", false, 1, 1},
		{"qos1-window20", false, 1, 20},
		{"qos0-stored", true, 0, 64},
		{"qos1-window20-stored", true, 1, 20},
	} {
		b.Run(bc.name, func(b *testing.B) { benchIngest(b, bc.stored, bc.qos, bc.window) })
	}
}

func benchIngest(b *testing.B, stored bool, qos, window int) {
	const topic = "node/bench/temperature"
	srv := bustest.StartServer(b)
	if !stored {
		js, err := jetstream.New(bustest.Connect(b, srv))
		if err != nil {
			b.Fatal(err)
		}
		if err := js.DeleteStream(context.Background(), bus.NodesStream); err != nil {
			b.Fatal(err)
		}
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	gw, err := New(Config{Conn: bustest.Connect(b, srv), Logger: bustest.Quiet(), PacketConn: conn, Rate: -1, NodeValueRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var arrived atomic.Int64
	moved := make(chan struct{}, 1) // a value arrived or was acknowledged
	nudge := func() {
		select {
		case moved <- struct{}{}:
		default:
		}
	}
	subject, err := bus.TopicToSubject(topic)
	if err != nil {
		b.Fatal(err)
	}
	sub, err := bustest.Connect(b, srv).Subscribe(subject, func(*nats.Msg) { arrived.Add(1); nudge() })
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	gwAddr := conn.LocalAddr().(*net.UDPAddr)
	cc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	client := benchClient{conn: cc, gw: gwAddr}
	topicID := client.setup(b, topic)

	var acked atomic.Int64
	if qos == 1 {
		go client.countAcks(&acked, nudge)
	}
	pub := &packet.Publish{Flags: packet.Flags(0).WithQoS(qos), TopicID: topicID, Data: []byte(benchPayload)}
	buf := make([]byte, 0, 64)
	// The sender paces itself on PUBACKs (QoS 1) or arrivals (QoS 0). UDP
	// may drop a datagram and the benchmark sends nothing again: when
	// nothing moves for a second, what is outstanding counts as lost.
	var lost int64
	paced := &arrived
	if qos == 1 {
		paced = &acked
	}
	waitUntil := func(count *atomic.Int64, target, sent int64) {
		last, since := count.Load()+lost, time.Now()
		for count.Load()+lost < target {
			wait(moved)
			if d := count.Load() + lost; d != last {
				last, since = d, time.Now()
			} else if time.Since(since) > time.Second {
				lost += sent - d
				return
			}
		}
	}
	b.SetBytes(int64(len(benchPayload)))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if int64(i)-paced.Load()-lost >= int64(window) {
			waitUntil(paced, int64(i-window+1), int64(i))
		}
		pub.MsgID = uint16(i%0xFFFE) + 1
		buf, _ = packet.Append(buf[:0], pub)
		if _, err := cc.WriteToUDP(buf, gwAddr); err != nil {
			b.Fatal(err)
		}
	}
	waitUntil(paced, int64(b.N), int64(b.N))
	lost = 0 // PUBACK goes out before NATS delivers: wait for every value too
	waitUntil(&arrived, int64(b.N), int64(b.N))
	elapsed := time.Since(start)
	b.StopTimer()
	if missing := int64(b.N) - arrived.Load(); missing > 0 {
		b.ReportMetric(float64(missing), "lost")
	}
	b.ReportMetric(float64(min(arrived.Load(), int64(b.N)))/elapsed.Seconds(), "values/s")
}

// wait blocks until the gateway made progress, or 10 ms passed.
func wait(moved <-chan struct{}) {
	select {
	case <-moved:
	case <-time.After(10 * time.Millisecond):
	}
}

// benchClient is the publishing side of the ingest benchmark.
type benchClient struct {
	conn *net.UDPConn
	gw   *net.UDPAddr
}

// setup connects and registers the benchmark topic, returning its id.
func (c benchClient) setup(b *testing.B, topic string) uint16 {
	b.Helper()
	send := func(p packet.Packet) packet.Packet {
		raw, _ := packet.Marshal(p)
		if _, err := c.conn.WriteToUDP(raw, c.gw); err != nil {
			b.Fatal(err)
		}
		rb := make([]byte, 512)
		_ = c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.conn.Read(rb)
		if err != nil {
			b.Fatal(err)
		}
		_ = c.conn.SetReadDeadline(time.Time{})
		ans, err := packet.Unmarshal(rb[:n])
		if err != nil {
			b.Fatal(err)
		}
		return ans
	}
	if ack, ok := send(&packet.Connect{Flags: packet.FlagCleanSession, ProtocolID: 1, Duration: 360, ClientID: "bench"}).(*packet.Connack); !ok || ack.ReturnCode != packet.Accepted {
		b.Fatal("connect refused")
	}
	ack, ok := send(&packet.Register{MsgID: 1, TopicName: topic}).(*packet.Regack)
	if !ok || ack.ReturnCode != packet.Accepted {
		b.Fatal("register refused")
	}
	return ack.TopicID
}

// countAcks counts PUBACKs until the socket closes.
func (c benchClient) countAcks(n *atomic.Int64, nudge func()) {
	rb := make([]byte, 512)
	for {
		k, err := c.conn.Read(rb)
		if err != nil {
			return
		}
		if p, err := packet.Unmarshal(rb[:k]); err == nil {
			if a, ok := p.(*packet.Puback); ok && a.ReturnCode == packet.Accepted {
				n.Add(1)
				nudge()
			}
		}
	}
}

// BenchmarkMosquitto is the baseline: the same values through a local
// mosquitto broker, from mosquitto_pub -l (one message per line, up to 20
// QoS 1 messages in flight) to mosquitto_sub, at QoS 0 and 1.
func BenchmarkMosquitto(b *testing.B) {
	for _, bin := range []string{"mosquitto", "mosquitto_pub", "mosquitto_sub"} {
		bustest.Peer(b, bin)
	}
	port := startMosquitto(b)
	for _, qos := range []int{0, 1} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) { benchMosquitto(b, port, qos) })
	}
}

// startMosquitto runs a broker on a free loopback port until b ends.
func startMosquitto(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	conf := filepath.Join(b.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bustest.Peer(b, "mosquitto"), "-c", conf)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			b.Fatalf("mosquitto did not listen on %s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func benchMosquitto(b *testing.B, port string, qos int) {
	q := fmt.Sprint(qos)
	sub := exec.Command(bustest.Peer(b, "mosquitto_sub"), "-h", "127.0.0.1", "-p", port, "-q", q, "-t", "bench/#")
	out, err := sub.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Process.Kill(); _ = sub.Wait() }()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitSubscribed(b, port, lines)

	input := strings.Repeat(benchPayload+"\n", b.N)
	pub := exec.Command(bustest.Peer(b, "mosquitto_pub"), "-h", "127.0.0.1", "-p", port, "-q", q, "-t", "bench/v", "-l")
	pub.Stdin = strings.NewReader(input)
	b.SetBytes(int64(len(benchPayload)))
	b.ResetTimer()
	start := time.Now()
	if err := pub.Start(); err != nil {
		b.Fatal(err)
	}
	got := 0
	timeout := time.After(60 * time.Second)
	for got < b.N {
		select {
		case l, ok := <-lines:
			if !ok {
				b.Fatalf("mosquitto_sub ended after %d of %d", got, b.N)
			}
			if l == benchPayload {
				got++
			}
		case <-timeout:
			b.Fatalf("%d of %d values arrived through mosquitto", got, b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := pub.Wait(); err != nil {
		b.Fatalf("mosquitto_pub: %v", err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "values/s")
}

// waitSubscribed publishes probes until mosquitto_sub prints one.
func waitSubscribed(b *testing.B, port string, lines <-chan string) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		probe := exec.Command(bustest.Peer(b, "mosquitto_pub"), "-h", "127.0.0.1", "-p", port, "-q", "1", "-t", "bench/ready", "-m", "ready")
		probe.Stdout, probe.Stderr = io.Discard, io.Discard
		if err := probe.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				b.Fatal(err)
			}
		}
		select {
		case l := <-lines:
			if l == "ready" {
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
	b.Fatal("mosquitto_sub did not subscribe")
}
