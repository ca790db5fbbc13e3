// Package coapreply answers CoAP requests as RFC 7252 §5.2 and RFC 7967
// ask, without go-coap's response cache for NON requests.
//
//   - A confirmable request gets its answer piggybacked on the ACK, through
//     go-coap's response writer (which keeps it for EXCHANGE_LIFETIME, 247 s,
//     so that a retransmission gets the same answer).
//   - A NON request gets a NON response with the request's token and a new
//     message id (RFC 7252 §5.2.3), written straight to the peer's session
//     (UDP or DTLS), from the address the request was sent to: through the
//     response writer go-coap would keep every such answer 247 s in the
//     peer's cache and scan that cache on every datagram, and Conn.WriteMessage
//     would add block-wise and Q-Block bookkeeping that an answer of a few
//     bytes never needs. A duplicated NON is handled again, as go-coap does
//     for an unanswered NON.
//   - A message that is not a request (a response, an empty message) is
//     never answered: two peers that answered each other's stray responses
//     (go-coap's router hands them to the default handler, whose 4.04 is
//     itself such a response) would bounce datagrams for ever.
//   - A request whose No-Response option (RFC 7967, option 258) declares no
//     interest in the answer's class (bit 2: 2.xx, 8: 4.xx, 16: 5.xx) gets
//     nothing if NON, an empty ACK if confirmable. No option, an empty value
//     or 0 means interest in every answer.
//
// go-coap's own check (message/noresponse) lists codes rather than classes
// and misses some (4.29 Too Many Requests among them); this package goes by
// class, as the RFC does.
package coapreply

import (
	"bytes"
	"fmt"
	"io"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// No-Response option bits (RFC 7967 §2.1): the answer classes a client is
// not interested in.
const (
	NoSuccess     uint32 = 2  // 2.xx
	NoClientError uint32 = 8  // 4.xx
	NoServerError uint32 = 16 // 5.xx
)

// Suppressed reports whether the request's No-Response option declares no
// interest in answers of code's class. A request without the option, or
// with a value that is not an unsigned integer, wants every answer.
func Suppressed(opts message.Options, code codes.Code) bool {
	v, err := opts.GetUint32(message.NoResponse)
	if err != nil {
		return false
	}
	class := uint32(code) >> 5
	if class == 0 {
		return false
	}
	return v&(1<<(class-1)) != 0
}

// IsRequest reports whether code is a request method (class 0, not the
// empty code).
func IsRequest(code codes.Code) bool { return code > codes.Empty && code < 32 }

// Reply answers req with code and, when text is not empty, text as a
// text/plain payload (see the package comment for how).
func Reply(w mux.ResponseWriter, req *mux.Message, code codes.Code, text string) error {
	if !IsRequest(req.Code()) || Suppressed(req.Options(), code) {
		return nil // an unmodified writer: an empty ACK to a CON, nothing to a NON
	}
	if req.Type() == message.NonConfirmable {
		return replyNON(w.Conn(), req, code, text)
	}
	var body io.ReadSeeker
	if text != "" {
		body = bytes.NewReader([]byte(text))
	}
	if err := w.SetResponse(code, message.TextPlain, body); err != nil {
		return fmt.Errorf("coap reply %v: %w", code, err)
	}
	return nil
}

// replyNON writes a NON response to req on cc, outside go-coap's response
// writer and so outside its response cache.
func replyNON(cc mux.Conn, req *mux.Message, code codes.Code, text string) error {
	resp := cc.AcquireMessage(req.Context())
	defer cc.ReleaseMessage(resp)
	resp.SetCode(code)
	resp.SetToken(req.Token())
	resp.SetType(message.NonConfirmable)
	if text != "" {
		resp.SetContentFormat(message.TextPlain)
		resp.SetBody(bytes.NewReader([]byte(text)))
	}
	var err error
	if s, ok := cc.(sessionConn); ok {
		err = writeToSession(s, req, resp)
	} else {
		err = cc.WriteMessage(resp)
	}
	if err != nil {
		return fmt.Errorf("coap non reply %v: %w", code, err)
	}
	return nil
}

// sessionConn is go-coap's UDP and DTLS conn (*udp/client.Conn).
type sessionConn interface {
	Session() udpClient.Session
	GetMessageID() int32
}

// writeToSession sends resp straight through the peer's session: an answer
// of a few bytes needs none of the conn's block-wise, Q-Block and
// retransmission bookkeeping, which Conn.WriteMessage goes through for every
// message (about half the cost of the answer). Like the conn, it answers
// from the address the request was sent to (wildcard listeners).
func writeToSession(s sessionConn, req *mux.Message, resp *pool.Message) error {
	resp.SetMessageID(s.GetMessageID())
	if cm := req.ControlMessage(); cm != nil {
		out := &coapNet.ControlMessage{IfIndex: cm.IfIndex}
		if len(cm.Dst) > 0 && !cm.Dst.IsMulticast() {
			out.Src = cm.Dst
		}
		resp.SetControlMessage(out)
	}
	return s.Session().WriteMessage(resp)
}
