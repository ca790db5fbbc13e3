package mqttsn

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqttsn/packet"
)

// Reasons of refusal, the keys of Stats.Refused.
const (
	ReasonClientID   = "client_id"       // CONNECT: the client id is not a valid node id
	ReasonNewIDs     = "new_ids"         // CONNECT: too many new client ids from one address
	ReasonPublish    = "publish_topic"   // REGISTER, PUBLISH: not the client's own node/<id>/… or node/check
	ReasonCheckID    = "check_id"        // PUBLISH node/check announcing another id (or no JSON id)
	ReasonSubscribe  = "subscribe_topic" // SUBSCRIBE: outside gateway/<id>/# and gateway/check
	ReasonWill       = "will_topic"      // WILLTOPIC, WILLTOPICUPD: a topic the client may not publish
	ReasonValueBytes = "value_bytes"     // PUBLISH, will: payload larger than MaxValueBytes
	ReasonValueRate  = "value_rate"      // PUBLISH: above NodeValueRate
	ReasonResources  = "resources"       // REGISTER, PUBLISH: one resource more than MaxResources
	ReasonAnonymous  = "anonymous"       // QoS −1 PUBLISH from an address without a session
)

// errNotOwn is why a topic outside the client's own rights is refused.
var errNotOwn = errors.New("not a topic of the client's own node")

// publishRight reports whether client id own may publish on subject: the
// nodes it speaks for (bus.SpeaksFor: its client id, or <id> for a client
// id mqtt-<id>) publish their own
// node.<own>.<res> (a valid resource, never $state or another $ name),
// node.<own>.resources and node.check. It returns the resource name for a
// value subject ("" for the others), to count against MaxResources.
func publishRight(own, subject string) (string, error) {
	s, err := bus.ParseSubject(subject)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNotOwn, err)
	}
	switch {
	case s.Kind == bus.KindNodeCheck:
		return "", nil
	case s.Kind == bus.KindNodeResources && bus.SpeaksFor(own, s.Node):
		return "", nil
	case s.Kind == bus.KindNodeValue && bus.SpeaksFor(own, s.Node):
		return s.Resource, nil
	}
	return "", errNotOwn
}

// subscribeRight reports whether node id own may subscribe to the NATS
// subject (or wildcard subject) sub: gateway.check, and gateway.<own> with
// anything below it. Wildcards in the first two tokens are refused.
func subscribeRight(own, sub string) error {
	if sub == bus.SubjectGatewayCheck {
		return nil
	}
	t := strings.SplitN(sub, ".", 3)
	if len(t) >= 2 && t[0] == "gateway" && bus.SpeaksFor(own, t[1]) {
		return nil
	}
	return errNotOwn
}

// checkAnnounces returns the node a node.check payload announces, and
// whether the client clientID speaks for it.
func checkAnnounces(data []byte, clientID string) (string, bool) {
	var c bus.Check
	if json.Unmarshal(data, &c) != nil || !bus.SpeaksFor(clientID, c.ID) {
		return "", false
	}
	return c.ID, true
}

// admit checks one message of c on subject (a PUBLISH, or its will) against
// c's rights and quotas. It returns packet.Accepted, or the return code of
// the refusal, which it has counted and logged: 0x03 "not supported" for
// what sending again cannot change (rights, size, resources), 0x01
// "congestion" for the value rate, which passes with time.
func (g *Gateway) admit(c *client, p *peer, subject string, data []byte) packet.ReturnCode {
	refuse := func(code packet.ReturnCode, reason string, args ...any) packet.ReturnCode {
		g.refused(p, reason, "publish refused", append([]any{"client", c.id, "subject", subject}, args...)...)
		return code
	}
	res, err := publishRight(c.id, subject)
	check, announces := "", false
	if subject == bus.SubjectNodeCheck {
		check, announces = checkAnnounces(data, c.id)
	}
	switch {
	case err != nil:
		return refuse(packet.NotSupported, ReasonPublish, "err", err)
	case g.cfg.MaxValueBytes > 0 && len(data) > g.cfg.MaxValueBytes:
		return refuse(packet.NotSupported, ReasonValueBytes, "bytes", len(data), "max", g.cfg.MaxValueBytes)
	case subject == bus.SubjectNodeCheck && !announces:
		return refuse(packet.NotSupported, ReasonCheckID, "payload", truncate(data, 64))
	case res != "" && !g.claimResource(c, res):
		return refuse(packet.NotSupported, ReasonResources, "resource", res, "max", g.cfg.MaxResources)
	case c.values != nil && !c.values.Allow():
		return refuse(packet.Congestion, ReasonValueRate, "rate", g.cfg.NodeValueRate)
	}
	if check != "" && check != c.check {
		c.check = check // announced again after a restart (persist.go)
		g.changed(c)
	}
	return packet.Accepted
}

// claimResource counts res as one of c's resources, unless that makes one
// more than MaxResources.
func (g *Gateway) claimResource(c *client, res string) bool {
	if c.resources[res] {
		return true
	}
	if g.cfg.MaxResources > 0 && len(c.resources) >= g.cfg.MaxResources {
		return false
	}
	c.resources[res] = true
	g.changed(c)
	return true
}

// refused counts a refusal under its reason and logs it within the
// sender's log budget. g.mu is held.
func (g *Gateway) refused(p *peer, reason, msg string, args ...any) {
	g.refusals[reason]++
	g.badInput(msg, append([]any{"reason", reason}, args...)...)
}

// truncate shortens b for a log line.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// source is the new-client-id budget of one source address (IP, any port).
type source struct {
	lim  *rate.Limiter
	last time.Time
}

// allowNewID spends one of addr's new client ids for this second.
func (g *Gateway) allowNewID(addr netip.Addr, now time.Time) bool {
	if g.cfg.NewNodesPerSource < 0 {
		return true
	}
	s := g.sources[addr]
	if s == nil {
		if len(g.sources) >= 2*g.cfg.MaxClients {
			return g.strangerIDs.AllowN(now, 1)
		}
		s = &source{lim: newIDLimiter(g.cfg.NewNodesPerSource)}
		g.sources[addr] = s
	}
	s.last = now
	return s.lim.AllowN(now, 1)
}

// newIDLimiter allows perSecond new ids a second, in bursts of as many.
func newIDLimiter(perSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond+0.999)))
}

// sweepSources forgets the budgets of addresses silent for a minute.
func (g *Gateway) sweepSources(now time.Time) {
	for addr, s := range g.sources {
		if now.Sub(s.last) > time.Minute {
			delete(g.sources, addr)
		}
	}
}

// newSession makes the session of a connecting client with its quotas;
// prev, when the client had a session it now cleans, hands over its
// resources and value budget, so reconnecting resets neither.
func (g *Gateway) newSession(id string, addr netip.AddrPort, now time.Time, prev *client) *client {
	c := newClient(id, addr, now)
	switch {
	case prev != nil:
		c.resources, c.values = prev.resources, prev.values
	case g.cfg.NodeValueRate > 0:
		c.values = rate.NewLimiter(rate.Limit(g.cfg.NodeValueRate), g.cfg.NodeValueBurst)
	}
	return c
}
