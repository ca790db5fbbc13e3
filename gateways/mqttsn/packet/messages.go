package packet

// Advertise is broadcast by a gateway now and then.
type Advertise struct {
	GatewayID uint8
	Duration  uint16 // seconds until the next ADVERTISE
}

// SearchGW is broadcast by a client looking for a gateway.
type SearchGW struct{ Radius uint8 }

// GWInfo answers SEARCHGW. Address is set only when a client answers for a
// gateway it knows.
type GWInfo struct {
	GatewayID uint8
	Address   []byte
}

// Connect opens a session.
type Connect struct {
	Flags      Flags
	ProtocolID uint8
	Duration   uint16 // keep-alive, seconds; 0 disables it
	ClientID   string
}

// Connack answers CONNECT.
type Connack struct{ ReturnCode ReturnCode }

// WillTopicReq asks the client for its will topic.
type WillTopicReq struct{}

// WillTopic carries the will topic; an empty Topic means no will.
type WillTopic struct {
	Flags Flags
	Topic string
}

// WillMsgReq asks the client for its will message.
type WillMsgReq struct{}

// WillMsg carries the will message.
type WillMsg struct{ Message []byte }

// Register binds a topic name to a topic id. A client sends TopicID 0 and
// the gateway answers with the id in REGACK; a gateway sends the id it chose.
type Register struct {
	TopicID   uint16
	MsgID     uint16
	TopicName string
}

// Regack answers REGISTER.
type Regack struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Publish carries a message to a topic id.
type Publish struct {
	Flags   Flags
	TopicID uint16
	MsgID   uint16
	Data    []byte
}

// Puback answers PUBLISH QoS 1, or any PUBLISH that is refused.
type Puback struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// MsgIDOnly is PUBREC, PUBREL, PUBCOMP or UNSUBACK: a message id alone.
type MsgIDOnly struct {
	Kind  Type // TypePubrec, TypePubrel, TypePubcomp or TypeUnsuback
	MsgID uint16
}

// Subscribe asks for messages on a topic filter (TopicName, with the
// TopicNormal id type) or a predefined or short topic id (TopicID).
type Subscribe struct {
	Flags     Flags
	MsgID     uint16
	TopicName string
	TopicID   uint16
}

// Suback answers SUBSCRIBE with the granted QoS in Flags.
type Suback struct {
	Flags      Flags
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Unsubscribe ends a subscription; fields as in Subscribe.
type Unsubscribe struct {
	Flags     Flags
	MsgID     uint16
	TopicName string
	TopicID   uint16
}

// Pingreq checks the peer; with a ClientID it wakes a sleeping client.
type Pingreq struct{ ClientID string }

// Pingresp answers PINGREQ.
type Pingresp struct{}

// Disconnect ends a session, or with HasDuration puts the client to sleep
// for Duration seconds.
type Disconnect struct {
	HasDuration bool
	Duration    uint16
}

// WillTopicUpd replaces the will topic; an empty Topic deletes the will.
type WillTopicUpd struct {
	Flags Flags
	Topic string
}

// WillTopicResp answers WILLTOPICUPD.
type WillTopicResp struct{ ReturnCode ReturnCode }

// WillMsgUpd replaces the will message.
type WillMsgUpd struct{ Message []byte }

// WillMsgResp answers WILLMSGUPD.
type WillMsgResp struct{ ReturnCode ReturnCode }

// Type implementations.

func (*Advertise) Type() Type     { return TypeAdvertise }
func (*SearchGW) Type() Type      { return TypeSearchGW }
func (*GWInfo) Type() Type        { return TypeGWInfo }
func (*Connect) Type() Type       { return TypeConnect }
func (*Connack) Type() Type       { return TypeConnack }
func (*WillTopicReq) Type() Type  { return TypeWillTopicReq }
func (*WillTopic) Type() Type     { return TypeWillTopic }
func (*WillMsgReq) Type() Type    { return TypeWillMsgReq }
func (*WillMsg) Type() Type       { return TypeWillMsg }
func (*Register) Type() Type      { return TypeRegister }
func (*Regack) Type() Type        { return TypeRegack }
func (*Publish) Type() Type       { return TypePublish }
func (*Puback) Type() Type        { return TypePuback }
func (p *MsgIDOnly) Type() Type   { return p.Kind }
func (*Subscribe) Type() Type     { return TypeSubscribe }
func (*Suback) Type() Type        { return TypeSuback }
func (*Unsubscribe) Type() Type   { return TypeUnsubscribe }
func (*Pingreq) Type() Type       { return TypePingreq }
func (*Pingresp) Type() Type      { return TypePingresp }
func (*Disconnect) Type() Type    { return TypeDisconnect }
func (*WillTopicUpd) Type() Type  { return TypeWillTopicUpd }
func (*WillTopicResp) Type() Type { return TypeWillTopicResp }
func (*WillMsgUpd) Type() Type    { return TypeWillMsgUpd }
func (*WillMsgResp) Type() Type   { return TypeWillMsgResp }

// Encoding.

func (p *Advertise) appendBody(d []byte) []byte { return appendU16(append(d, p.GatewayID), p.Duration) }
func (p *SearchGW) appendBody(d []byte) []byte  { return append(d, p.Radius) }
func (p *GWInfo) appendBody(d []byte) []byte    { return append(append(d, p.GatewayID), p.Address...) }
func (p *Connect) appendBody(d []byte) []byte {
	return append(appendU16(append(d, byte(p.Flags), p.ProtocolID), p.Duration), p.ClientID...)
}
func (p *Connack) appendBody(d []byte) []byte    { return append(d, byte(p.ReturnCode)) }
func (*WillTopicReq) appendBody(d []byte) []byte { return d }
func (p *WillTopic) appendBody(d []byte) []byte  { return appendWillTopic(d, p.Flags, p.Topic) }
func (*WillMsgReq) appendBody(d []byte) []byte   { return d }
func (p *WillMsg) appendBody(d []byte) []byte    { return append(d, p.Message...) }
func (p *Register) appendBody(d []byte) []byte {
	return append(appendU16(appendU16(d, p.TopicID), p.MsgID), p.TopicName...)
}
func (p *Regack) appendBody(d []byte) []byte {
	return append(appendU16(appendU16(d, p.TopicID), p.MsgID), byte(p.ReturnCode))
}
func (p *Publish) appendBody(d []byte) []byte {
	return append(appendU16(appendU16(append(d, byte(p.Flags)), p.TopicID), p.MsgID), p.Data...)
}
func (p *Puback) appendBody(d []byte) []byte {
	return append(appendU16(appendU16(d, p.TopicID), p.MsgID), byte(p.ReturnCode))
}
func (p *MsgIDOnly) appendBody(d []byte) []byte { return appendU16(d, p.MsgID) }
func (p *Subscribe) appendBody(d []byte) []byte {
	return appendTopic(appendU16(append(d, byte(p.Flags)), p.MsgID), p.Flags, p.TopicName, p.TopicID)
}
func (p *Suback) appendBody(d []byte) []byte {
	return append(appendU16(appendU16(append(d, byte(p.Flags)), p.TopicID), p.MsgID), byte(p.ReturnCode))
}
func (p *Unsubscribe) appendBody(d []byte) []byte {
	return appendTopic(appendU16(append(d, byte(p.Flags)), p.MsgID), p.Flags, p.TopicName, p.TopicID)
}
func (p *Pingreq) appendBody(d []byte) []byte { return append(d, p.ClientID...) }
func (*Pingresp) appendBody(d []byte) []byte  { return d }
func (p *Disconnect) appendBody(d []byte) []byte {
	if !p.HasDuration {
		return d
	}
	return appendU16(d, p.Duration)
}
func (p *WillTopicUpd) appendBody(d []byte) []byte  { return appendWillTopic(d, p.Flags, p.Topic) }
func (p *WillTopicResp) appendBody(d []byte) []byte { return append(d, byte(p.ReturnCode)) }
func (p *WillMsgUpd) appendBody(d []byte) []byte    { return append(d, p.Message...) }
func (p *WillMsgResp) appendBody(d []byte) []byte   { return append(d, byte(p.ReturnCode)) }

func appendWillTopic(d []byte, f Flags, topic string) []byte {
	if topic == "" {
		return d
	}
	return append(append(d, byte(f)), topic...)
}

func appendTopic(d []byte, f Flags, name string, id uint16) []byte {
	if f.TopicIDType() == TopicNormal {
		return append(d, name...)
	}
	return appendU16(d, id)
}
