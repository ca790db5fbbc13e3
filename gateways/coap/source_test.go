package coap

import (
	"net"
	"net/netip"
	"testing"

	"github.com/plgd-dev/go-coap/v3/mux"
)

// peerAt is a mux.Conn that only knows its remote address: sourceOf and
// nodeAddr read nothing else.
type peerAt struct {
	mux.Conn
	addr net.Addr
}

func (p peerAt) RemoteAddr() net.Addr { return p.addr }

func TestSourceAndNodeAddress(t *testing.T) {
	udp := func(s string) net.Addr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, tc := range []struct {
		name     string
		from     net.Addr
		nodePort int
		secure   bool
		key      string
		node     string
	}{
		{"ipv4", udp("192.0.2.7:54457"), DefaultNodePort, false, "192.0.2.7", "192.0.2.7:5683"},
		{"ipv4-mapped", udp("[::ffff:192.0.2.7]:54457"), DefaultNodePort, false, "192.0.2.7", "192.0.2.7:5683"},
		{"ula", udp("[fd00:dead:beef:0:a07a:65ff:fe81:a0b7]:54457"), DefaultNodePort, false,
			"fd00:dead:beef:0:a07a:65ff:fe81:a0b7", "[fd00:dead:beef:0:a07a:65ff:fe81:a0b7]:5683"},
		{"link-local keeps its zone", &net.UDPAddr{IP: net.ParseIP("fe80::a07a:65ff:fe81:a0b7"), Port: 54457, Zone: "tap0"}, DefaultNodePort, false,
			"fe80::a07a:65ff:fe81:a0b7%tap0", "[fe80::a07a:65ff:fe81:a0b7%tap0]:5683"},
		{"other node port", udp("192.0.2.7:54457"), 5700, false, "192.0.2.7", "192.0.2.7:5700"},
		{"source port mode", udp("192.0.2.7:54457"), SourcePort, false, "192.0.2.7:54457", "192.0.2.7:54457"},
		{"dtls", udp("192.0.2.7:54457"), DefaultNodePort, true, "dtls 192.0.2.7:54457", "192.0.2.7:54457"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Gateway{cfg: Config{NodePort: tc.nodePort}}
			src, err := g.sourceOf(peerAt{addr: tc.from}, tc.secure)
			if err != nil {
				t.Fatal(err)
			}
			node := g.nodeAddr(src)
			if src.key != tc.key || node.String() != tc.node {
				t.Errorf("key %q, node %q; want %q, %q", src.key, node, tc.key, tc.node)
			}
			if back := net.UDPAddrFromAddrPort(node); back.Zone != node.Addr().Zone() {
				t.Errorf("zone lost dialling %s: %+v", node, back)
			}
		})
	}
}
