package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/goaiot/goaiot/internal/coapreply"
)

// ServeNoopCoAP is the CoAP baseline: a go-coap server, configured like
// the goaiot gateway's, that answers every request 2.04 as the gateway
// does (package coapreply: NON to NON, none when No-Response declines it)
// and does nothing else. It prints "listening <addr>" to w once bound and serves until ctx
// ends.
func ServeNoopCoAP(ctx context.Context, addr string, w io.Writer) error {
	l, err := coapNet.NewListenUDP("udp4", addr)
	if err != nil {
		return fmt.Errorf("noop coap: %w", err)
	}
	r := mux.NewRouter()
	r.DefaultHandleFunc(func(w mux.ResponseWriter, m *mux.Message) {
		_ = coapreply.Reply(w, m, codes.Changed, "")
	})
	srv := udp.NewServer(options.WithMux(r), options.WithContext(ctx))
	if _, err := fmt.Fprintf(w, "listening %s\n", l.LocalAddr()); err != nil {
		return err
	}
	go func() { <-ctx.Done(); srv.Stop() }()
	if err := srv.Serve(l); err != nil && ctx.Err() == nil {
		return fmt.Errorf("noop coap: %w", err)
	}
	return nil
}

// startNoopCoAP runs `bin bench --noop-coap 127.0.0.1:0` and returns the
// child and its address.
func startNoopCoAP(ctx context.Context, bin string) (*child, string, error) {
	cmd := exec.Command(bin, "bench", "--noop-coap", "127.0.0.1:0")
	cmd.Env = childEnv()
	cmd.SysProcAttr = childAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("noop coap: %w", err)
	}
	c := newChild(cmd)
	go c.wait()
	addrc := make(chan string, 1)
	go func() {
		var addr string
		_, _ = fmt.Fscanf(out, "listening %s\n", &addr)
		addrc <- addr
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case addr := <-addrc:
		if addr == "" {
			c.stop()
			return nil, "", fmt.Errorf("noop coap: no address (%v)", c.exitErr())
		}
		return c, addr, nil
	case <-ctx.Done():
		c.stop()
		return nil, "", ctx.Err()
	case <-time.After(10 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("noop coap: not listening within 10 s")
	}
}

// startMosquitto runs mosquitto on a free loopback port with a temporary
// configuration (no persistence, anonymous) and waits until it accepts.
func startMosquitto(ctx context.Context, dir string) (*child, string, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return nil, "", fmt.Errorf("mosquitto baseline: %w (apt-get install mosquitto)", err)
	}
	port, err := freeTCPPort()
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\nlog_type error\n", port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("mosquitto: %w", err)
	}
	c := newChild(cmd)
	go c.wait()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			return c, addr, nil
		}
		select {
		case <-c.done:
			return nil, "", fmt.Errorf("mosquitto exited: %v", c.exitErr())
		case <-ctx.Done():
			c.stop()
			return nil, "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	c.stop()
	return nil, "", fmt.Errorf("mosquitto not accepting on %s within 10 s", addr)
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
