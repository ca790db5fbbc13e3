package packet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// TestUnmarshalEmcute decodes datagrams captured from RIOT's emcute.
func TestUnmarshalEmcute(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Packet
	}{
		{"connect", "0c04040101686d7174742d32",
			&Connect{Flags: FlagCleanSession, ProtocolID: 1, Duration: 360, ClientID: "mqtt-2"}},
		{"register", "100a000012346e6f64652f636865636b",
			&Register{TopicID: 0, MsgID: 0x1234, TopicName: "node/check"}},
		{"publish qos1", "170c20124412357b226964223a20226d7174742d32227d",
			&Publish{Flags: 0x20, TopicID: 0x1244, MsgID: 0x1235, Data: []byte(`{"id": "mqtt-2"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Unmarshal(mustHex(t, tt.hex))
			if err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
			again, err := Marshal(got)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if hex.EncodeToString(again) != tt.hex {
				t.Fatalf("re-encoded %x, want %s", again, tt.hex)
			}
		})
	}
}

// TestRoundTrip encodes one message of every type and decodes it back.
func TestRoundTrip(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	tests := []struct {
		name string
		p    Packet
		wire string // expected encoding, when short enough to write down
	}{
		{"advertise", &Advertise{GatewayID: 7, Duration: 900}, "05000703 84"},
		{"searchgw", &SearchGW{Radius: 1}, "030101"},
		{"gwinfo", &GWInfo{GatewayID: 7}, "030207"},
		{"gwinfo with address", &GWInfo{GatewayID: 7, Address: []byte{127, 0, 0, 1}}, "0702077f000001"},
		{"connack", &Connack{ReturnCode: Congestion}, "030501"},
		{"willtopicreq", &WillTopicReq{}, "0206"},
		{"willtopic", &WillTopic{Flags: Flags(0).WithQoS(1), Topic: "a/b"}, "060720612f62"},
		{"willtopic empty", &WillTopic{}, "0207"},
		{"willmsgreq", &WillMsgReq{}, "0208"},
		{"willmsg", &WillMsg{Message: []byte("bye")}, "0509627965"},
		{"regack", &Regack{TopicID: 1, MsgID: 2, ReturnCode: InvalidTopicID}, "070b0001000202"},
		{"publish qos-1 short", &Publish{Flags: Flags(0).WithQoS(-1).WithTopicIDType(TopicShort), TopicID: 0x6162, Data: []byte("1")}, "080c626162000031"},
		{"publish long", &Publish{Flags: 0, TopicID: 1, MsgID: 2, Data: long}, ""},
		{"puback", &Puback{TopicID: 1, MsgID: 2, ReturnCode: Accepted}, "070d0001000200"},
		{"pubrec", &MsgIDOnly{Kind: TypePubrec, MsgID: 9}, "040f0009"},
		{"pubrel", &MsgIDOnly{Kind: TypePubrel, MsgID: 9}, "04100009"},
		{"pubcomp", &MsgIDOnly{Kind: TypePubcomp, MsgID: 9}, "040e0009"},
		{"unsuback", &MsgIDOnly{Kind: TypeUnsuback, MsgID: 9}, "04150009"},
		{"subscribe name", &Subscribe{Flags: Flags(0).WithQoS(1), MsgID: 3, TopicName: "gateway/+/led/set"}, ""},
		{"subscribe predefined", &Subscribe{Flags: Flags(0).WithTopicIDType(TopicPredefined), MsgID: 3, TopicID: 5}, "0712010003 0005"},
		{"suback", &Suback{Flags: Flags(0).WithQoS(2), TopicID: 5, MsgID: 3, ReturnCode: Accepted}, "081340000500 0300"},
		{"unsubscribe short", &Unsubscribe{Flags: Flags(0).WithTopicIDType(TopicShort), MsgID: 3, TopicID: 0x6162}, "071402000361 62"},
		{"pingreq", &Pingreq{}, "0216"},
		{"pingreq with client id", &Pingreq{ClientID: "n1"}, "04166e31"},
		{"pingresp", &Pingresp{}, "0217"},
		{"disconnect", &Disconnect{}, "0218"},
		{"disconnect sleep", &Disconnect{HasDuration: true, Duration: 60}, "0418003c"},
		{"willtopicupd", &WillTopicUpd{Flags: FlagRetain, Topic: "w"}, "041a1077"},
		{"willtopicresp", &WillTopicResp{}, "031b00"},
		{"willmsgupd", &WillMsgUpd{Message: []byte("m")}, "031c6d"},
		{"willmsgresp", &WillMsgResp{ReturnCode: NotSupported}, "031d03"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(tt.p)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if want := strings.ReplaceAll(tt.wire, " ", ""); want != "" && hex.EncodeToString(b) != want {
				t.Fatalf("wire %x, want %s", b, want)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("unmarshal %x: %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.p) {
				t.Fatalf("got %#v, want %#v", got, tt.p)
			}
		})
	}
}

func TestLongHeader(t *testing.T) {
	p := &Publish{TopicID: 1, MsgID: 2, Data: bytes.Repeat([]byte("y"), 400)}
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0x01 || int(b[1])<<8|int(b[2]) != len(b) || Type(b[3]) != TypePublish {
		t.Fatalf("long header %x", b[:4])
	}
	if _, err := Marshal(&Publish{Data: make([]byte, 70000)}); err == nil {
		t.Fatal("marshal of a 70000-byte message succeeded")
	}
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", ErrTruncated},
		{"one byte", "02", ErrTruncated},
		{"long header cut", "010005", ErrTruncated},
		{"length zero", "000c", ErrMalformed},
		{"length one", "010001 0c", ErrMalformed},
		{"length too big", "0a0c20", ErrLength},
		{"length too small", "030c2000010002", ErrLength},
		{"unknown type", "0203", ErrUnknownType},
		{"encapsulated", "03fe00", ErrUnknownType},
		{"connect without client id", "0604040101 68", ErrTruncated},
		{"register without name", "060a00001234", ErrTruncated},
		{"publish cut", "060c20000100", ErrTruncated},
		{"puback long", "080d000100020000", ErrMalformed},
		{"pubrel cut", "031000", ErrTruncated},
		{"subscribe empty name", "0512000001", ErrMalformed},
		{"subscribe reserved type", "0712030001 0001", ErrMalformed},
		{"subscribe predefined cut", "0612010001 00", ErrTruncated},
		{"disconnect odd", "031801", ErrMalformed},
		{"willtopic flags only", "030720", ErrMalformed},
		{"pingresp with body", "031700", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal(mustHex(t, strings.ReplaceAll(tt.hex, " ", "")))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		f    Flags
		qos  int
		tid  TopicIDType
	}{
		{"qos0 normal", 0x00, 0, TopicNormal},
		{"qos1 predefined", 0x21, 1, TopicPredefined},
		{"qos2 short", 0x42, 2, TopicShort},
		{"qos-1 short", 0x62, -1, TopicShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.f.QoS() != tt.qos || tt.f.TopicIDType() != tt.tid {
				t.Fatalf("%#x: qos %d type %d", tt.f, tt.f.QoS(), tt.f.TopicIDType())
			}
			if g := Flags(0).WithQoS(tt.qos).WithTopicIDType(tt.tid); g != tt.f {
				t.Fatalf("built %#x, want %#x", g, tt.f)
			}
		})
	}
	if id, ok := ShortTopicID("ab"); !ok || ShortTopicName(id) != "ab" {
		t.Fatalf("short topic ab: %x %v", id, ok)
	}
	if _, ok := ShortTopicID("abc"); ok {
		t.Fatal("abc is not a short topic")
	}
}

func TestLargestPublish(t *testing.T) {
	if _, err := Marshal(&Publish{Data: make([]byte, 0xFFFF-9)}); err != nil {
		t.Fatalf("largest publish: %v", err)
	}
	if _, err := Marshal(&Publish{Data: make([]byte, 0xFFFF-8)}); err == nil {
		t.Fatal("a publish one byte too long was encoded")
	}
}
