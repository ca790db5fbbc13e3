// Package mqtttest runs mosquitto's real programs for tests: a mosquitto
// broker on a free loopback port with a temporary configuration, and the
// mosquitto_pub / mosquitto_sub clients as MQTT nodes.
package mqtttest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus/bustest"
)

// Broker is a running mosquitto.
type Broker struct {
	Host string
	Port int
	// URL is the paho URL of the broker: tcp://host:port, or ssl:// with TLS.
	URL string
}

// BrokerOptions adds to mosquitto's configuration.
type BrokerOptions struct {
	// User and Password, when set, are the only login accepted.
	User, Password string
	// CAFile, CertFile and KeyFile, when set, make the listener TLS.
	CAFile, CertFile, KeyFile string
}

// StartBroker starts mosquitto on a free port of 127.0.0.1 and stops it when
// the test ends.
func StartBroker(t testing.TB, o BrokerOptions) *Broker {
	t.Helper()
	bin := bustest.Peer(t, "mosquitto")
	dir := t.TempDir()
	port := FreePort(t)
	conf := []string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"persistence false",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"max_queued_messages 0",
		"max_inflight_messages 0",
	}
	if os.Geteuid() == 0 {
		conf = append(conf, "user root") // keep reading the temporary files
	}
	if o.User == "" {
		conf = append(conf, "allow_anonymous true")
	} else {
		passwd := filepath.Join(dir, "passwd")
		out, err := exec.Command(bustest.Peer(t, "mosquitto_passwd"), "-b", "-c", passwd, o.User, o.Password).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
		conf = append(conf, "allow_anonymous false", "password_file "+passwd)
	}
	scheme := "tcp"
	if o.CertFile != "" {
		scheme = "ssl"
		conf = append(conf, "cafile "+o.CAFile, "certfile "+o.CertFile, "keyfile "+o.KeyFile)
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stderr = testLog{t}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitListening(t, addr)
	return &Broker{Host: "127.0.0.1", Port: port, URL: scheme + "://" + addr}
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("mosquitto not listening on %s after 10 s", addr)
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log("mosquitto: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

// SplitAddr splits host:port for the mosquitto clients' -h and -p.
func SplitAddr(t testing.TB, addr string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if host == "" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return host, port
}

// Pub publishes one message with mosquitto_pub at QoS 1 to the broker at
// addr (host:port); extra arguments are passed on (e.g. -u, -P).
func Pub(t testing.TB, addr, topic, payload string, extra ...string) {
	t.Helper()
	host, port := SplitAddr(t, addr)
	args := append([]string{"-h", host, "-p", port, "-q", "1", "-t", topic, "-m", payload}, extra...)
	out, err := exec.Command(bustest.Peer(t, "mosquitto_pub"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %s %q: %v: %s", topic, payload, err, out)
	}
}

// PubLines publishes every line of lines as one message on topic, in one
// mosquitto_pub connection (-l).
func PubLines(t testing.TB, addr, topic string, lines []string) {
	t.Helper()
	host, port := SplitAddr(t, addr)
	cmd := exec.Command(bustest.Peer(t, "mosquitto_pub"), "-h", host, "-p", port, "-q", "1", "-t", topic, "-l")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub -l %s: %v: %s", topic, err, out)
	}
}

// Sub runs mosquitto_sub -v on filter at QoS 1 until the test ends and
// returns its lines ("topic payload"). It returns once subscribed. extra
// arguments are passed on (e.g. -i <client id>).
func Sub(t testing.TB, addr, filter string, extra ...string) <-chan string {
	t.Helper()
	host, port := SplitAddr(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	// -d prints the SUBACK, which tells that the subscription is in place;
	// stdbuf makes mosquitto_sub write each line at once into the pipe.
	args := append([]string{"-oL", bustest.Peer(t, "mosquitto_sub"),
		"-h", host, "-p", port, "-q", "1", "-v", "-d", "-t", filter}, extra...)
	cmd := exec.CommandContext(ctx, bustest.Peer(t, "stdbuf"), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	lines := make(chan string, 1024)
	subscribed := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		acked := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case !acked && strings.HasPrefix(line, "Client ") && strings.Contains(line, "received SUBACK"):
				acked = true
				close(subscribed)
			case strings.HasPrefix(line, "Client ") || strings.HasPrefix(line, "Subscribed ("):
			default:
				lines <- line
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		<-done
	})
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatalf("mosquitto_sub %s: no SUBACK within 10 s", filter)
	}
	return lines
}

// NextLine waits for the next line of lines equal to want.
func NextLine(t testing.TB, lines <-chan string, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-lines:
			if l == want {
				return
			}
		case <-deadline:
			t.Fatalf("no line %q within %s", want, timeout)
		}
	}
}
