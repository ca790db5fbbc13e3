package coap_test

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/gateways/coap"
)

// noAnswerWait is how long libcoap's client waits for an answer: longer
// than the test's own timeout, so a request left unanswered fails the test
// instead of ending quietly.
const noAnswerWait = "30"

// coapPost POSTs payload to the gateway with libcoap's client, from a
// source address of its own, as a NON request like RIOT, and needs the
// gateway's NON 2.04 to end before the test's timeout.
func coapPost(t *testing.T, g *coap.Gateway, from, path, payload string) {
	t.Helper()
	client := bustest.Peer(t, "coap-client-notls")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	uri := "coap://" + g.Addr().String() + path
	out, err := exec.CommandContext(ctx, client, "-N", "-B", noAnswerWait, "-a", from, "-m", "post", "-t", "0", "-e", payload, uri).CombinedOutput()
	if err != nil {
		t.Fatalf("coap-client-notls -N post %s %q: %v (no answer within %s?)\n%s", uri, payload, err, wait, out)
	}
}

// coapRequest sends a request (NON with non) with libcoap's client and
// returns what it printed (the response payload, or the error code).
func coapRequest(t *testing.T, g *coap.Gateway, non bool, from, method, path, payload string) string {
	t.Helper()
	client := bustest.Peer(t, "coap-client-notls")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	args := []string{"-B", noAnswerWait, "-a", from, "-m", method}
	if non {
		args = append(args, "-N")
	}
	if payload != "" {
		args = append(args, "-e", payload)
	}
	args = append(args, "coap://"+g.Addr().String()+path)
	out, _ := exec.CommandContext(ctx, client, args...).CombinedOutput() // an error code is an exit status
	return string(out)
}

// TestLibcoapClientPosts: libcoap's coap-client-notls announces a node and
// pushes values from the shell, as a real peer.
func TestLibcoapClientPosts(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, func(c *coap.Config) { c.RequestTimeout = 300 * time.Millisecond })
	const uid = "libcoap1"

	coapPost(t, g, "127.0.53.6", "/alive", "reset:"+uid)
	if s := nextState(t, events, uid); s.State != bus.StateOnline || s.Address != "127.0.53.6:5683" {
		t.Fatalf("$state = %+v, want online at 127.0.53.6:5683", s)
	}
	coapPost(t, g, "127.0.53.6", "/server", "temperature:19.5°C")
	if v := nextValue(t, events, uid, "temperature"); v != "19.5°C" {
		t.Errorf("temperature = %q, want 19.5°C", v)
	}
	coapPost(t, g, "127.0.53.6", "/server", "suit_state: 2")
	if v := nextValue(t, events, uid, "suit_state"); v != " 2" {
		t.Errorf("suit_state = %q, want \" 2\" (kept as sent)", v)
	}
	t.Run("errors reach the client", func(t *testing.T) {
		for _, tc := range []struct{ name, method, path, payload, want string }{
			{"unknown node", "post", "/server", "temperature:1°C", "4.04"},
			{"unsafe uid", "post", "/alive", "alive:a.b", "4.00"},
			{"get alive", "get", "/alive", "", "4.05"},
			{"unknown path", "post", "/nothing", "x:y", "4.04"},
		} {
			for _, non := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s non=%v", tc.name, non), func(t *testing.T) {
					if out := coapRequest(t, g, non, "127.0.53.16", tc.method, tc.path, tc.payload); !strings.Contains(out, tc.want) {
						t.Errorf("coap-client printed %q, want %s", out, tc.want)
					}
				})
			}
		}
	})
}

// TestLibcoapServerNode: a node served by libcoap's coap-server-notls on
// 5683 of its own address, announced by a coap-client-notls POST from that
// address, is discovered; its observable /time is observed.
func TestLibcoapServerNode(t *testing.T) {
	server := bustest.Peer(t, "coap-server-notls")
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	events := bustest.Subscribe(t, nc, "node.>")
	g := startGateway(t, nc, nil)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, server, "-A", "127.0.53.7", "-p", "5683")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start coap-server-notls: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	waitUDP(t, "127.0.53.7:5683")

	const uid = "libcoap-server"
	coapPost(t, g, "127.0.53.7", "/alive", "alive:"+uid)
	names, err := bus.ParseResources(bustest.Next(t, events, bus.NodeResources(uid), wait).Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"time", "async", "example_data"} {
		if !slices.Contains(names, want) {
			t.Errorf("resources %v lack %q", names, want)
		}
	}
	// /time is observable: two notifications, a second apart.
	first := nextValue(t, events, uid, "time")
	second := nextValue(t, events, uid, "time")
	if first == "" || first == second {
		t.Errorf("time values %q then %q: want two different clock readings", first, second)
	}
	bustest.Eventually(t, wait, "notifications counted", func() error { return bustest.Want(g.Stats().Notifications >= 2) })
	// go-coap keeps one confirmable request in flight per peer (NSTART 1):
	// on a loaded machine the PUT can wait behind the discovery's GET of
	// libcoap's slow /async past the command timeout, so it is tried again.
	bustest.Eventually(t, 3*wait, "PUT example_data confirmed", func() error {
		r := command(t, nc, uid, "example_data", "hello")
		return bustest.Want(r.OK, r)
	})
}

// waitUDP waits until a CoAP server answers a ping at addr.
func waitUDP(t *testing.T, addr string) {
	t.Helper()
	client := bustest.Peer(t, "coap-client-notls")
	bustest.Eventually(t, wait, "coap server at "+addr, func() error {
		out, err := exec.Command(client, "-B", "1", "coap://"+addr+"/").CombinedOutput()
		return bustest.Want(err == nil && len(out) > 0)
	})
}
