// Package packet encodes and decodes MQTT-SN 1.2 messages, one message per
// UDP datagram. It knows the wire format only; sessions, topics and retries
// belong to the gateway.
//
// # Wire format (MQTT-SN 1.2, §5)
//
// Every message starts with a length and a type:
//
//	Length   1 octet (2..255), or 0x01 followed by 2 octets big endian (256..65535)
//	MsgType  1 octet
//	fields   per type, integers big endian
//
// The length counts the whole message, header included. A datagram whose
// length field disagrees with its size is refused ([ErrLength]): UDP
// delivers whole datagrams, so a mismatch is a broken sender, not a split.
//
// The flags octet (CONNECT, WILLTOPIC, PUBLISH, SUBSCRIBE, SUBACK, …):
//
//	bit 7    DUP          re-sent message
//	bits 6-5 QoS          00 = 0, 01 = 1, 10 = 2, 11 = −1 (publish without a connection)
//	bit 4    Retain
//	bit 3    Will         CONNECT: the client will send WILLTOPIC/WILLMSG when asked
//	bit 2    CleanSession CONNECT
//	bits 1-0 TopicIdType  00 normal (registered id, or a topic name in SUBSCRIBE),
//	                      01 predefined id, 10 short name (2 characters), 11 reserved
//
// Messages (type, fields after the header):
//
//	0x00 ADVERTISE     GwId(1) Duration(2)
//	0x01 SEARCHGW      Radius(1)
//	0x02 GWINFO        GwId(1) GwAdd(n, only when a client answers)
//	0x04 CONNECT       Flags(1) ProtocolId(1)=0x01 Duration(2) ClientId(1..)
//	0x05 CONNACK       ReturnCode(1)
//	0x06 WILLTOPICREQ  –
//	0x07 WILLTOPIC     [Flags(1) WillTopic(n)]   empty: no will
//	0x08 WILLMSGREQ    –
//	0x09 WILLMSG       WillMsg(n)
//	0x0A REGISTER      TopicId(2) MsgId(2) TopicName(n)
//	0x0B REGACK        TopicId(2) MsgId(2) ReturnCode(1)
//	0x0C PUBLISH       Flags(1) TopicId(2) MsgId(2) Data(n)
//	0x0D PUBACK        TopicId(2) MsgId(2) ReturnCode(1)
//	0x0E PUBCOMP       MsgId(2)
//	0x0F PUBREC        MsgId(2)
//	0x10 PUBREL        MsgId(2)
//	0x12 SUBSCRIBE     Flags(1) MsgId(2) TopicName(n) | TopicId(2)
//	0x13 SUBACK        Flags(1) TopicId(2) MsgId(2) ReturnCode(1)
//	0x14 UNSUBSCRIBE   Flags(1) MsgId(2) TopicName(n) | TopicId(2)
//	0x15 UNSUBACK      MsgId(2)
//	0x16 PINGREQ       [ClientId(n)]   with a client id: a sleeping client is awake
//	0x17 PINGRESP      –
//	0x18 DISCONNECT    [Duration(2)]   with a duration: the client goes to sleep
//	0x1A WILLTOPICUPD  [Flags(1) WillTopic(n)]
//	0x1B WILLTOPICRESP ReturnCode(1)
//	0x1C WILLMSGUPD    WillMsg(n)
//	0x1D WILLMSGRESP   ReturnCode(1)
//
// Return codes: 0x00 accepted, 0x01 rejected: congestion, 0x02 rejected:
// invalid topic id, 0x03 rejected: not supported.
//
// Not supported: the forwarder encapsulation (0xFE) is refused with
// [ErrUnknownType]; a gateway drops such datagrams.
//
// Decoded byte slices and strings alias nothing: [Unmarshal] copies what it
// keeps, except [Publish.Data], [WillMsg.Message] and [WillMsgUpd.Message],
// which alias the datagram (copy them before reusing the buffer).
package packet
