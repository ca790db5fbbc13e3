package packet

// Flags is the flags octet of CONNECT, WILLTOPIC, PUBLISH, SUBSCRIBE, SUBACK
// and UNSUBSCRIBE.
type Flags byte

// Flag bits.
const (
	FlagDUP          Flags = 0x80
	FlagRetain       Flags = 0x10
	FlagWill         Flags = 0x08
	FlagCleanSession Flags = 0x04

	qosMask         Flags = 0x60
	topicIDTypeMask Flags = 0x03
)

// TopicIDType says what a topic id field holds.
type TopicIDType byte

// Topic id types.
const (
	// TopicNormal is a registered topic id (PUBLISH) or a topic name
	// (SUBSCRIBE, UNSUBSCRIBE).
	TopicNormal TopicIDType = 0
	// TopicPredefined is an id both sides know beforehand.
	TopicPredefined TopicIDType = 1
	// TopicShort is a two-character topic name carried in the id field.
	TopicShort TopicIDType = 2
	// TopicReserved is not valid.
	TopicReserved TopicIDType = 3
)

// DUP reports a re-sent message.
func (f Flags) DUP() bool { return f&FlagDUP != 0 }

// Retain reports the retain flag.
func (f Flags) Retain() bool { return f&FlagRetain != 0 }

// Will reports that a CONNECT is followed by the will exchange.
func (f Flags) Will() bool { return f&FlagWill != 0 }

// CleanSession reports the clean session flag of CONNECT.
func (f Flags) CleanSession() bool { return f&FlagCleanSession != 0 }

// QoS is the quality of service: 0, 1, 2, or −1 (publish without connection).
func (f Flags) QoS() int {
	switch f & qosMask {
	case 0x00:
		return 0
	case 0x20:
		return 1
	case 0x40:
		return 2
	}
	return -1
}

// WithQoS returns f with its QoS bits set to q (−1, 0, 1 or 2; others are 0).
func (f Flags) WithQoS(q int) Flags {
	f &^= qosMask
	switch q {
	case 1:
		f |= 0x20
	case 2:
		f |= 0x40
	case -1:
		f |= 0x60
	}
	return f
}

// TopicIDType is what the topic id field holds.
func (f Flags) TopicIDType() TopicIDType { return TopicIDType(f & topicIDTypeMask) }

// WithTopicIDType returns f with its topic id type set to t.
func (f Flags) WithTopicIDType(t TopicIDType) Flags {
	return f&^topicIDTypeMask | Flags(t)&topicIDTypeMask
}

// ShortTopicID encodes a two-character topic name as a topic id.
func ShortTopicID(name string) (uint16, bool) {
	if len(name) != 2 {
		return 0, false
	}
	return uint16(name[0])<<8 | uint16(name[1]), true
}

// ShortTopicName decodes a short topic id into its two-character name.
func ShortTopicName(id uint16) string { return string([]byte{byte(id >> 8), byte(id)}) }
