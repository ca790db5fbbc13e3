package coap

import (
	"bytes"
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/plgd-dev/go-coap/v3/message"

	"github.com/goaiot/goaiot/gateways/presence"
)

// ErrRefused wraps a node's non-2.xx answer to a command: it is
// presence.ErrRefused, so the reply's code is "refused".
var ErrRefused = presence.ErrRefused

// refusal is a node's non-2.xx answer ("4.00 Bad Request"), wrapping ErrRefused.
type refusal string

func (r refusal) Error() string { return string(r) }
func (refusal) Unwrap() error   { return ErrRefused }

// command is the tracker's CommandFunc: a confirmable PUT of payload to the
// node's resource. A 2.xx answer publishes the new value.
func (g *Gateway) command(ctx context.Context, uid, res string, payload []byte) error {
	n := g.lookup(uid)
	if n == nil {
		return fmt.Errorf("node %s: %w: not known to this gateway", uid, presence.ErrNotServed)
	}
	if len(payload) > MaxPayload {
		return fmt.Errorf("payload: %w: %d bytes, max %d", ErrPayloadTooLarge, len(payload), MaxPayload)
	}
	n.inflight.Add(1) // a separate response may come well after the ACK
	defer n.inflight.Add(-1)
	cc, err := g.connTo(n)
	if err != nil {
		return err
	}
	resp, err := cc.Put(ctx, "/"+res, message.TextPlain, bytes.NewReader(payload))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("PUT /%s: %w", res, err)
	}
	defer cc.ReleaseMessage(resp)
	if resp.Code()>>5 != 2 {
		return refusal(CodeText(resp.Code()))
	}
	if utf8.Valid(payload) {
		g.publishValue(n, res, payload)
	}
	return nil
}
