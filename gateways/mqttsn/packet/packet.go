package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Type is an MQTT-SN message type.
type Type byte

// The message types of MQTT-SN 1.2.
const (
	TypeAdvertise     Type = 0x00
	TypeSearchGW      Type = 0x01
	TypeGWInfo        Type = 0x02
	TypeConnect       Type = 0x04
	TypeConnack       Type = 0x05
	TypeWillTopicReq  Type = 0x06
	TypeWillTopic     Type = 0x07
	TypeWillMsgReq    Type = 0x08
	TypeWillMsg       Type = 0x09
	TypeRegister      Type = 0x0A
	TypeRegack        Type = 0x0B
	TypePublish       Type = 0x0C
	TypePuback        Type = 0x0D
	TypePubcomp       Type = 0x0E
	TypePubrec        Type = 0x0F
	TypePubrel        Type = 0x10
	TypeSubscribe     Type = 0x12
	TypeSuback        Type = 0x13
	TypeUnsubscribe   Type = 0x14
	TypeUnsuback      Type = 0x15
	TypePingreq       Type = 0x16
	TypePingresp      Type = 0x17
	TypeDisconnect    Type = 0x18
	TypeWillTopicUpd  Type = 0x1A
	TypeWillTopicResp Type = 0x1B
	TypeWillMsgUpd    Type = 0x1C
	TypeWillMsgResp   Type = 0x1D
)

var typeNames = map[Type]string{
	TypeAdvertise: "ADVERTISE", TypeSearchGW: "SEARCHGW", TypeGWInfo: "GWINFO",
	TypeConnect: "CONNECT", TypeConnack: "CONNACK", TypeWillTopicReq: "WILLTOPICREQ",
	TypeWillTopic: "WILLTOPIC", TypeWillMsgReq: "WILLMSGREQ", TypeWillMsg: "WILLMSG",
	TypeRegister: "REGISTER", TypeRegack: "REGACK", TypePublish: "PUBLISH",
	TypePuback: "PUBACK", TypePubcomp: "PUBCOMP", TypePubrec: "PUBREC", TypePubrel: "PUBREL",
	TypeSubscribe: "SUBSCRIBE", TypeSuback: "SUBACK", TypeUnsubscribe: "UNSUBSCRIBE",
	TypeUnsuback: "UNSUBACK", TypePingreq: "PINGREQ", TypePingresp: "PINGRESP",
	TypeDisconnect: "DISCONNECT", TypeWillTopicUpd: "WILLTOPICUPD",
	TypeWillTopicResp: "WILLTOPICRESP", TypeWillMsgUpd: "WILLMSGUPD", TypeWillMsgResp: "WILLMSGRESP",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(0x%02x)", byte(t))
}

// ReturnCode is the result carried by CONNACK, REGACK, PUBACK, SUBACK and
// the will update responses.
type ReturnCode byte

// Return codes of MQTT-SN 1.2.
const (
	Accepted       ReturnCode = 0x00
	Congestion     ReturnCode = 0x01
	InvalidTopicID ReturnCode = 0x02
	NotSupported   ReturnCode = 0x03
)

func (c ReturnCode) String() string {
	switch c {
	case Accepted:
		return "accepted"
	case Congestion:
		return "rejected: congestion"
	case InvalidTopicID:
		return "rejected: invalid topic id"
	case NotSupported:
		return "rejected: not supported"
	}
	return fmt.Sprintf("return code 0x%02x", byte(c))
}

// ProtocolID is the only protocol id of MQTT-SN 1.2, carried in CONNECT.
const ProtocolID = 0x01

// Errors returned by Unmarshal; test with errors.Is.
var (
	ErrTruncated   = errors.New("truncated")
	ErrLength      = errors.New("length field disagrees with datagram size")
	ErrUnknownType = errors.New("unknown or unsupported message type")
	ErrMalformed   = errors.New("malformed")
)

// Packet is one decoded MQTT-SN message.
type Packet interface {
	// Type is the message type.
	Type() Type
	// appendBody appends the fields after the header.
	appendBody(dst []byte) []byte
	// decode fills the packet from the fields after the header.
	decode(body []byte) error
}

// Unmarshal decodes one datagram.
func Unmarshal(b []byte) (Packet, error) {
	t, body, err := split(b)
	if err != nil {
		return nil, err
	}
	p := newPacket(t)
	if p == nil {
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnknownType, byte(t))
	}
	if err := p.decode(body); err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	return p, nil
}

// split checks the header and returns the type and the fields after it.
func split(b []byte) (Type, []byte, error) {
	if len(b) < 2 {
		return 0, nil, fmt.Errorf("header: %w: %d bytes", ErrTruncated, len(b))
	}
	length, hdr := int(b[0]), 1
	if b[0] == 0x01 {
		if len(b) < 4 {
			return 0, nil, fmt.Errorf("long header: %w: %d bytes", ErrTruncated, len(b))
		}
		length, hdr = int(binary.BigEndian.Uint16(b[1:3])), 3
	}
	if length < hdr+1 {
		return 0, nil, fmt.Errorf("%w: length %d", ErrMalformed, length)
	}
	if length != len(b) {
		return 0, nil, fmt.Errorf("%w: length %d, datagram %d bytes", ErrLength, length, len(b))
	}
	return Type(b[hdr]), b[hdr+1:], nil
}

func newPacket(t Type) Packet {
	switch t {
	case TypeAdvertise:
		return &Advertise{}
	case TypeSearchGW:
		return &SearchGW{}
	case TypeGWInfo:
		return &GWInfo{}
	case TypeConnect:
		return &Connect{}
	case TypeConnack:
		return &Connack{}
	case TypeWillTopicReq:
		return &WillTopicReq{}
	case TypeWillTopic:
		return &WillTopic{}
	case TypeWillMsgReq:
		return &WillMsgReq{}
	case TypeWillMsg:
		return &WillMsg{}
	case TypeRegister:
		return &Register{}
	case TypeRegack:
		return &Regack{}
	case TypePublish:
		return &Publish{}
	case TypePuback:
		return &Puback{}
	case TypePubcomp, TypePubrec, TypePubrel, TypeUnsuback:
		return &MsgIDOnly{Kind: t}
	case TypeSubscribe:
		return &Subscribe{}
	case TypeSuback:
		return &Suback{}
	case TypeUnsubscribe:
		return &Unsubscribe{}
	case TypePingreq:
		return &Pingreq{}
	case TypePingresp:
		return &Pingresp{}
	case TypeDisconnect:
		return &Disconnect{}
	case TypeWillTopicUpd:
		return &WillTopicUpd{}
	case TypeWillTopicResp:
		return &WillTopicResp{}
	case TypeWillMsgUpd:
		return &WillMsgUpd{}
	case TypeWillMsgResp:
		return &WillMsgResp{}
	}
	return nil
}

// Append encodes p after dst. It fails only when the message would exceed
// 65535 bytes.
func Append(dst []byte, p Packet) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, byte(p.Type()))
	dst = p.appendBody(dst)
	n := len(dst) - start
	if n <= 255 {
		dst[start] = byte(n)
		return dst, nil
	}
	n += 2
	if n > 0xFFFF {
		return dst[:start], fmt.Errorf("%s: %d bytes: too long for MQTT-SN", p.Type(), n)
	}
	dst = append(dst, 0, 0)
	copy(dst[start+3:], dst[start+1:len(dst)-2])
	dst[start] = 0x01
	binary.BigEndian.PutUint16(dst[start+1:], uint16(n))
	return dst, nil
}

// Marshal encodes p into a new slice.
func Marshal(p Packet) ([]byte, error) { return Append(nil, p) }

func appendU16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }

// need checks that body holds at least n bytes.
func need(body []byte, n int) error {
	if len(body) < n {
		return fmt.Errorf("%w: %d bytes of fields, need %d", ErrTruncated, len(body), n)
	}
	return nil
}

// exact checks that body holds exactly n bytes.
func exact(body []byte, n int) error {
	if len(body) < n {
		return need(body, n)
	}
	if len(body) > n {
		return fmt.Errorf("%w: %d bytes of fields, want %d", ErrMalformed, len(body), n)
	}
	return nil
}

func u16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
