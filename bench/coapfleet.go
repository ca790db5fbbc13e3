package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"golang.org/x/net/ipv4"
)

// firstNodeAddr is the address of the first CoAP node; the nodes of each
// scenario take the next free addresses.
var firstNodeAddr = netip.AddrFrom4([4]byte{127, 1, 0, 1})

// strangerAddr is the first address of the nodes that never register: a
// gateway can never have learned them, whatever ran before.
var strangerAddr = netip.AddrFrom4([4]byte{127, 254, 0, 1})

// maxCoAPNodes keeps node addresses below strangerAddr; maxStrangers keeps
// strangers inside 127.254.0.0/16.
const (
	maxCoAPNodes = 16_000_000
	maxStrangers = 65_000
)

// coapFleet simulates many RIOT-like CoAP nodes with one socket (see the
// package documentation): node i has its own loopback address, serves CoAP
// on port, and POSTs to the gateway from there.
type coapFleet struct {
	conn    net.PacketConn
	pc      *ipv4.PacketConn
	gateway atomic.Pointer[net.UDPAddr]
	port    int
	nodes   atomic.Int64
	// base is the address offset of node 0 of the current scenario: each
	// scenario takes fresh addresses, so that a gateway that still knows
	// an address from a previous scenario never mistakes a node.
	base, nextBase atomic.Int64
	strangers      atomic.Int64
	prefix         string // node i's uid is prefix + i; guarded by mu
	links          string // the nodes' /.well-known/core; guarded by mu

	mid   atomic.Uint32
	token atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]pendingCON
	led     map[int]string // last PUT /led per node

	// counters of what the gateway did to the nodes
	gets, puts, acks, timeouts, rejected atomic.Int64
}

type pendingCON struct {
	sent int64            // tally time
	done func(acked bool) // may be nil
}

// newCoAPFleet binds the fleet's socket on the wildcard address at port
// (0: any); configure sets its nodes and setGateway where they send.
func newCoAPFleet(port int) (*coapFleet, error) {
	conn, err := net.ListenPacket("udp4", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("coap nodes: listen on port %d: %w", port, err)
	}
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("coap nodes: IP_PKTINFO: %w", err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(8 << 20)
		_ = uc.SetWriteBuffer(8 << 20)
	}
	return &coapFleet{conn: conn, pc: pc, port: conn.LocalAddr().(*net.UDPAddr).Port,
		pending: make(map[uint64]pendingCON), led: make(map[int]string)}, nil
}

// setGateway points the nodes at a gateway (a loopback address).
func (f *coapFleet) setGateway(addr string) error {
	gw, err := loopbackUDP(addr)
	if err != nil {
		return fmt.Errorf("coap gateway: %w", err)
	}
	f.gateway.Store(gw)
	return nil
}

// loopbackUDP resolves addr and refuses anything outside 127.0.0.0/8.
func loopbackUDP(addr string) (*net.UDPAddr, error) {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, err
	}
	if !ua.IP.IsLoopback() {
		return nil, fmt.Errorf("%s: not a loopback address (bench only sends to 127.0.0.0/8)", addr)
	}
	return ua, nil
}

// configure sets the nodes of the next scenario: count, strangers (that
// follow them, from addresses no gateway knows), uid prefix and their
// /.well-known/core.
func (f *coapFleet) configure(nodes, strangers int, prefix, links string) error {
	if strangers > maxStrangers {
		return fmt.Errorf("%d strangers: at most %d", strangers, maxStrangers)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	base := f.nextBase.Add(int64(nodes)) - int64(nodes)
	if base+int64(nodes) > maxCoAPNodes {
		return fmt.Errorf("out of node addresses: %d used", base)
	}
	f.base.Store(base)
	f.nodes.Store(int64(nodes))
	f.strangers.Store(int64(strangers))
	f.prefix, f.links = prefix, links
	clear(f.led)
	return nil
}

func (f *coapFleet) uid(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prefix + strconv.Itoa(i)
}

// nodeIP is the address of node i of the current scenario.
func (f *coapFleet) nodeIP(i int) net.IP {
	first, off := firstNodeAddr.As4(), uint32(f.base.Load())+uint32(i)
	if n := int(f.nodes.Load()); i >= n {
		first, off = strangerAddr.As4(), uint32(i-n)
	}
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(first[:])+off)
	return ip
}

// nodeIndex is the node of the current scenario at ip.
func (f *coapFleet) nodeIndex(ip net.IP) (int, bool) {
	ip4 := ip.To4()
	if ip4 == nil {
		return 0, false
	}
	v := int64(binary.BigEndian.Uint32(ip4))
	first, str := firstNodeAddr.As4(), strangerAddr.As4()
	nodes, strangers := f.nodes.Load(), f.strangers.Load()
	if off := v - int64(binary.BigEndian.Uint32(str[:])); off >= 0 && off < strangers {
		return int(nodes + off), true
	}
	off := v - int64(binary.BigEndian.Uint32(first[:])) - f.base.Load()
	return int(off), off >= 0 && off < nodes
}

func (f *coapFleet) close() error { return f.conn.Close() }

// post sends a POST of payload to path from node i; confirmable asks for
// an acknowledgement (tracked, with done called on it or on timeout).
func (f *coapFleet) post(i int, path, payload string, confirmable bool, sent int64, done func(acked bool)) error {
	m := message.Message{Code: codes.POST, MessageID: int32(uint16(f.mid.Add(1))), Type: message.NonConfirmable}
	tok := f.token.Add(1)
	m.Token = binary.BigEndian.AppendUint64(nil, tok)
	var obuf [64]byte
	opts, n, err := message.Options{}.SetPath(obuf[:], path)
	if err != nil {
		return err
	}
	opts, _, err = opts.SetContentFormat(obuf[n:], message.TextPlain)
	if err != nil {
		return err
	}
	m.Options, m.Payload = opts, []byte(payload)
	if confirmable {
		m.Type = message.Confirmable
		f.mu.Lock()
		f.pending[tok] = pendingCON{sent: sent, done: done}
		f.mu.Unlock()
	}
	gw := f.gateway.Load()
	if gw == nil {
		return errors.New("coap nodes: no gateway")
	}
	return f.write(m, f.nodeIP(i), gw)
}

func (f *coapFleet) write(m message.Message, from net.IP, to net.Addr) error {
	buf := make([]byte, 0, 256)
	size, err := coder.DefaultCoder.Size(m)
	if err != nil {
		return err
	}
	buf = buf[:size]
	if _, err := coder.DefaultCoder.Encode(m, buf); err != nil {
		return err
	}
	_, err = f.pc.WriteTo(buf, &ipv4.ControlMessage{Src: from}, to)
	return err
}

// serve answers the gateway's requests to the nodes and takes the answers
// to their confirmable POSTs, until the socket closes.
func (f *coapFleet) serve() error {
	buf := make([]byte, 2048)
	var m message.Message
	m.Options = make(message.Options, 0, 16)
	for {
		n, cm, src, err := f.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("coap nodes: read: %w", err)
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok || !ua.IP.IsLoopback() || cm == nil {
			continue // only ever talk to 127.0.0.0/8
		}
		if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
			continue
		}
		node, ok := f.nodeIndex(cm.Dst)
		if !ok {
			continue
		}
		if m.Code >= codes.Created || m.Code == codes.Empty {
			f.answered(&m)
			continue
		}
		f.request(node, &m, cm.Dst, ua)
	}
}

// answered takes a response (or an empty ACK/RST) to one of our POSTs.
func (f *coapFleet) answered(m *message.Message) {
	if m.Code>>5 >= 4 {
		f.rejected.Add(1)
	}
	if len(m.Token) != 8 {
		return
	}
	tok := binary.BigEndian.Uint64(m.Token)
	f.mu.Lock()
	p, ok := f.pending[tok]
	delete(f.pending, tok)
	f.mu.Unlock()
	if ok {
		f.acks.Add(1)
		if p.done != nil {
			p.done(true)
		}
	}
}

// request answers a GET or PUT from the gateway as a RIOT node would.
func (f *coapFleet) request(node int, m *message.Message, from net.IP, to *net.UDPAddr) {
	path, _ := m.Options.Path()
	resp := message.Message{Token: m.Token, MessageID: m.MessageID, Type: message.Acknowledgement, Code: codes.NotFound}
	if m.Type != message.Confirmable {
		resp.Type, resp.MessageID = message.NonConfirmable, int32(uint16(f.mid.Add(1)))
	}
	switch {
	case m.Code == codes.GET && path == "/.well-known/core":
		f.gets.Add(1)
		f.mu.Lock()
		resp.Code, resp.Payload = codes.Content, []byte(f.links)
		f.mu.Unlock()
		var obuf [8]byte
		resp.Options, _, _ = message.Options{}.SetContentFormat(obuf[:], message.AppLinkFormat)
	case m.Code == codes.GET && path == "/led":
		f.gets.Add(1)
		f.mu.Lock()
		v := f.led[node]
		f.mu.Unlock()
		if v == "" {
			v = "0"
		}
		resp.Code, resp.Payload = codes.Content, []byte(v)
	case m.Code == codes.PUT && path == "/led":
		f.puts.Add(1)
		f.mu.Lock()
		f.led[node] = string(m.Payload)
		f.mu.Unlock()
		resp.Code = codes.Changed
	}
	_ = f.write(resp, from, to)
}

// expire drops confirmable POSTs unanswered for longer than timeout,
// calling their done; it runs until ctx ends.
func (f *coapFleet) expire(ctx context.Context, now func() int64, timeout time.Duration) {
	t := time.NewTicker(timeout / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		limit := now() - int64(timeout)
		var late []func(bool)
		f.mu.Lock()
		for tok, p := range f.pending {
			if p.sent < limit {
				delete(f.pending, tok)
				late = append(late, p.done)
			}
		}
		f.mu.Unlock()
		for _, done := range late {
			f.timeouts.Add(1)
			if done != nil {
				done(false)
			}
		}
	}
}
