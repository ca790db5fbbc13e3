package bench

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// mqttFleet is the scale-mqtt scenario's nodes: one raw MQTT 3.1.1
// connection each (paho's packet codec, no client machinery), clean
// session, no keep-alive. A node connects at its first beacon, subscribes
// at QoS 0 to gateway/<id>/discover and gateway/<id>/+/set as Pyaiot's
// nodes do, announces itself on node/check, and answers a discover with
// its resource list; each later beacon is a node/check.
type mqttFleet struct {
	broker string
	prefix string
	// sources spreads the connections over loopback source addresses, as
	// one address has only ~28 000 ephemeral ports.
	sources  int
	conns    []mqttConn
	errs     atomic.Int64 // connections or writes that failed
	firstErr atomic.Pointer[error]
}

type mqttConn struct {
	mu sync.Mutex
	c  net.Conn
	w  *bufio.Writer
}

// connsPerSource bounds the connections from one loopback address.
const connsPerSource = 20_000

func newMQTTFleet(broker, prefix string, n int) *mqttFleet {
	return &mqttFleet{broker: broker, prefix: prefix, sources: n/connsPerSource + 1, conns: make([]mqttConn, n)}
}

func (f *mqttFleet) id(i int) string { return f.prefix + strconv.Itoa(i) }

// beacon connects node i if it is not yet (in the background) or
// publishes its node/check.
func (f *mqttFleet) beacon(i int) {
	c := &f.conns[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c == nil {
		c.c = dialing
		go f.connect(i)
		return
	}
	if c.c == dialing {
		return
	}
	f.publishLocked(c, "node/check", `{"id":"`+f.id(i)+`"}`)
}

// dialing marks a connection being set up.
var dialing net.Conn = &net.TCPConn{}

func (f *mqttFleet) connect(i int) {
	c := &f.conns[i]
	conn, err := f.dial(i)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		f.errs.Add(1)
		f.firstErr.CompareAndSwap(nil, &err)
		c.c = nil // retried at its next beacon
		return
	}
	c.c, c.w = conn, bufio.NewWriterSize(conn, 256)
	id := f.id(i)
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID, sub.Topics, sub.Qoss = 1, []string{"gateway/" + id + "/discover", "gateway/" + id + "/+/set"}, []byte{0, 0}
	_ = sub.Write(c.w)
	f.publishLocked(c, "node/check", `{"id":"`+id+`"}`)
	go f.read(i, conn)
}

// dial opens the TCP connection of node i and completes CONNECT.
func (f *mqttFleet) dial(i int) (net.Conn, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 1, 0, byte(1+i%f.sources))}
	d := net.Dialer{LocalAddr: src, Timeout: 30 * time.Second}
	conn, err := d.Dial("tcp", f.broker)
	if err != nil {
		return nil, err
	}
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.CleanSession, cp.ClientIdentifier = "MQTT", 4, true, f.id(i)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := cp.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	p, err := packets.ReadPacket(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if ack, ok := p.(*packets.ConnackPacket); !ok || ack.ReturnCode != packets.Accepted {
		conn.Close()
		return nil, fmt.Errorf("mqtt %s: refused: %v", f.id(i), p)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// read answers node i's discovers until its connection ends.
func (f *mqttFleet) read(i int, conn net.Conn) {
	r := bufio.NewReaderSize(conn, 256)
	for {
		p, err := packets.ReadPacket(r)
		if err != nil {
			return
		}
		if m, ok := p.(*packets.PublishPacket); ok && m.TopicName == "gateway/"+f.id(i)+"/discover" {
			c := &f.conns[i]
			c.mu.Lock()
			f.publishLocked(c, "node/"+f.id(i)+"/resources", `["temperature"]`)
			c.mu.Unlock()
		}
	}
}

func (f *mqttFleet) publishLocked(c *mqttConn, topic, payload string) {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Payload = topic, []byte(payload)
	if p.Write(c.w) != nil || c.w.Flush() != nil {
		f.errs.Add(1)
	}
}

// firstError is the first connection error, "" if none.
func (f *mqttFleet) firstError() string {
	if e := f.firstErr.Load(); e != nil {
		return (*e).Error()
	}
	return ""
}

func (f *mqttFleet) close() {
	for i := range f.conns {
		c := &f.conns[i]
		c.mu.Lock()
		if c.c != nil && c.c != dialing {
			_ = c.c.Close()
		}
		c.mu.Unlock()
	}
}
