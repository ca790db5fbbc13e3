package packet

import "fmt"

func (p *Advertise) decode(b []byte) error {
	if err := exact(b, 3); err != nil {
		return err
	}
	p.GatewayID, p.Duration = b[0], u16(b[1:])
	return nil
}

func (p *SearchGW) decode(b []byte) error {
	if err := exact(b, 1); err != nil {
		return err
	}
	p.Radius = b[0]
	return nil
}

func (p *GWInfo) decode(b []byte) error {
	if err := need(b, 1); err != nil {
		return err
	}
	p.GatewayID = b[0]
	p.Address = append([]byte(nil), b[1:]...)
	return nil
}

func (p *Connect) decode(b []byte) error {
	if err := need(b, 5); err != nil {
		return err
	}
	p.Flags, p.ProtocolID, p.Duration, p.ClientID = Flags(b[0]), b[1], u16(b[2:]), string(b[4:])
	return nil
}

func (p *Connack) decode(b []byte) error { return decodeCode(b, &p.ReturnCode) }

func (*WillTopicReq) decode(b []byte) error { return exact(b, 0) }

func (p *WillTopic) decode(b []byte) error { return decodeWillTopic(b, &p.Flags, &p.Topic) }

func (*WillMsgReq) decode(b []byte) error { return exact(b, 0) }

func (p *WillMsg) decode(b []byte) error { p.Message = b; return nil }

func (p *Register) decode(b []byte) error {
	if err := need(b, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID, p.TopicName = u16(b), u16(b[2:]), string(b[4:])
	return nil
}

func (p *Regack) decode(b []byte) error {
	if err := exact(b, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID, p.ReturnCode = u16(b), u16(b[2:]), ReturnCode(b[4])
	return nil
}

func (p *Publish) decode(b []byte) error {
	if err := need(b, 5); err != nil {
		return err
	}
	p.Flags, p.TopicID, p.MsgID, p.Data = Flags(b[0]), u16(b[1:]), u16(b[3:]), b[5:]
	return nil
}

func (p *Puback) decode(b []byte) error {
	if err := exact(b, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID, p.ReturnCode = u16(b), u16(b[2:]), ReturnCode(b[4])
	return nil
}

func (p *MsgIDOnly) decode(b []byte) error {
	if err := exact(b, 2); err != nil {
		return err
	}
	p.MsgID = u16(b)
	return nil
}

func (p *Subscribe) decode(b []byte) error {
	return decodeTopic(b, &p.Flags, &p.MsgID, &p.TopicName, &p.TopicID)
}

func (p *Suback) decode(b []byte) error {
	if err := exact(b, 6); err != nil {
		return err
	}
	p.Flags, p.TopicID, p.MsgID, p.ReturnCode = Flags(b[0]), u16(b[1:]), u16(b[3:]), ReturnCode(b[5])
	return nil
}

func (p *Unsubscribe) decode(b []byte) error {
	return decodeTopic(b, &p.Flags, &p.MsgID, &p.TopicName, &p.TopicID)
}

func (p *Pingreq) decode(b []byte) error { p.ClientID = string(b); return nil }

func (*Pingresp) decode(b []byte) error { return exact(b, 0) }

func (p *Disconnect) decode(b []byte) error {
	switch len(b) {
	case 0:
		return nil
	case 2:
		p.HasDuration, p.Duration = true, u16(b)
		return nil
	}
	return fmt.Errorf("%w: %d bytes of fields, want 0 or 2", ErrMalformed, len(b))
}

func (p *WillTopicUpd) decode(b []byte) error { return decodeWillTopic(b, &p.Flags, &p.Topic) }

func (p *WillTopicResp) decode(b []byte) error { return decodeCode(b, &p.ReturnCode) }

func (p *WillMsgUpd) decode(b []byte) error { p.Message = b; return nil }

func (p *WillMsgResp) decode(b []byte) error { return decodeCode(b, &p.ReturnCode) }

func decodeCode(b []byte, c *ReturnCode) error {
	if err := exact(b, 1); err != nil {
		return err
	}
	*c = ReturnCode(b[0])
	return nil
}

// decodeWillTopic reads [Flags WillTopic]; empty means "no will", a flags
// octet without a topic is malformed.
func decodeWillTopic(b []byte, f *Flags, topic *string) error {
	switch len(b) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: flags without a will topic", ErrMalformed)
	}
	*f, *topic = Flags(b[0]), string(b[1:])
	return nil
}

// decodeTopic reads Flags MsgId and a topic name or a 2-byte topic id.
func decodeTopic(b []byte, f *Flags, msgID *uint16, name *string, id *uint16) error {
	if err := need(b, 3); err != nil {
		return err
	}
	*f, *msgID = Flags(b[0]), u16(b[1:])
	rest := b[3:]
	switch f.TopicIDType() {
	case TopicNormal:
		if len(rest) == 0 {
			return fmt.Errorf("%w: empty topic name", ErrMalformed)
		}
		*name = string(rest)
	case TopicPredefined, TopicShort:
		if err := exact(rest, 2); err != nil {
			return err
		}
		*id = u16(rest)
	default:
		return fmt.Errorf("%w: reserved topic id type", ErrMalformed)
	}
	return nil
}
