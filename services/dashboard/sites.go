package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/sites"
)

// subscribeSites follows the messages a multi-site hub publishes (package
// sites): each site's link state and node id collisions. They reach every
// subscribed browser as {"type":"site",…} and {"type":"collision",…}, and
// the current ones are part of every snapshot. On a hub without sites none
// are ever published.
func (d *Dashboard) subscribeSites() (stop func(), err error) {
	var subs []*nats.Subscription
	stop = func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}
	for _, subject := range []string{sites.SubjectAllLinks, sites.SubjectCollision, bus.SubjectClaimRefused, bus.SubjectAllCommandResults} {
		s, err := d.nc.Subscribe(subject, d.onSiteMsg)
		if err != nil {
			stop()
			return nil, fmt.Errorf("dashboard: subscribe %s: %w", subject, err)
		}
		subs = append(subs, s)
	}
	return stop, nil
}

func (d *Dashboard) onSiteMsg(m *nats.Msg) {
	key, f, keep, err := siteFrame(m.Subject, m.Data)
	if err != nil {
		d.m.invalid.Inc()
		d.log.Debug("ignored site message", "subject", m.Subject, "err", err)
		return
	}
	if m.Subject == bus.SubjectClaimRefused {
		d.m.refused.Inc()
	}
	d.hub.publishSite(key, f, keep)
}

// siteFrame checks a site message and encodes it anew for browsers. key
// identifies what it is the state of; keep is false for a collision that is
// over, which no later snapshot needs.
func siteFrame(subject string, data []byte) (key string, f *frame, keep bool, err error) {
	if subject == bus.SubjectClaimRefused {
		return refusedFrame(data)
	}
	if strings.HasPrefix(subject, "aiot.commands.") {
		return outcomeFrame(subject, data)
	}
	if subject == sites.SubjectCollision {
		var c sites.Collision
		if err := json.Unmarshal(data, &c); err != nil {
			return "", nil, false, err
		}
		if err := bus.ValidateNodeID(c.UID); err != nil {
			return "", nil, false, err
		}
		if slices.ContainsFunc(c.Sites, func(s string) bool { return sites.ValidateName(s) != nil }) {
			return "", nil, false, fmt.Errorf("collision of %s: bad site name in %q", c.UID, c.Sites)
		}
		c.Type = "collision"
		return "collision\x00" + c.UID, mustFrame(c, "", true), len(c.Sites) > 1, nil
	}
	var l sites.Link
	if err := json.Unmarshal(data, &l); err != nil {
		return "", nil, false, err
	}
	switch {
	case sites.ValidateName(l.Site) != nil || subject != sites.SubjectLink(l.Site):
		return "", nil, false, fmt.Errorf("link of site %q on %s", l.Site, subject)
	case l.Link != sites.LinkUp && l.Link != sites.LinkDown:
		return "", nil, false, errors.New("link state " + l.Link)
	}
	l.Type = "site"
	return "site\x00" + l.Site, mustFrame(l, "", true), true, nil
}

// publishSite queues f for every subscribed browser and keeps it (or, with
// keep false, forgets key) for the snapshots.
func (h *hub) publishSite(key string, f *frame, keep bool) {
	h.mu.Lock()
	if keep {
		h.sites[key] = f
	} else {
		delete(h.sites, key)
	}
	full := h.addPending([]*frame{f}) // an extension message: goaiot's pages only
	h.mu.Unlock()
	if full {
		h.flush()
	}
}

// withSites puts the kept site frames before snapshot's closing "synced".
// h.mu is held.
func (h *hub) withSites(snapshot []*frame) []*frame {
	if len(h.sites) == 0 {
		return snapshot
	}
	keys := make([]string, 0, len(h.sites))
	for k := range h.sites {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	synced := snapshot[len(snapshot)-1]
	out := snapshot[:len(snapshot)-1]
	for _, k := range keys {
		out = append(out, h.sites[k])
	}
	return append(out, synced)
}

// refused is the browser message of a refused claim (bus.ClaimRefused).
type refused struct {
	Type     string `json:"type"`
	UID      string `json:"uid"`
	Owner    string `json:"owner"`
	Claimant string `json:"claimant"`
	TS       int64  `json:"ts"`
}

// refusedFrame checks a refused claim and encodes it for browsers; it is
// shown once, never kept for snapshots.
func refusedFrame(data []byte) (string, *frame, bool, error) {
	var c bus.ClaimRefused
	if err := json.Unmarshal(data, &c); err != nil {
		return "", nil, false, err
	}
	if err := bus.ValidateNodeID(c.UID); err != nil {
		return "", nil, false, err
	}
	if len(c.Owner) > 256 || len(c.Claimant) > 256 {
		return "", nil, false, errors.New("refused claim: owner or claimant too long")
	}
	r := refused{Type: "refused", UID: c.UID, Owner: c.Owner, Claimant: c.Claimant, TS: c.Time.UnixMilli()}
	return "refused\x00" + c.UID, mustFrame(r, "", true), false, nil
}

// outcomeFrame checks the outcome of a queued command and encodes it for
// browsers; shown once, never kept for snapshots.
func outcomeFrame(subject string, data []byte) (string, *frame, bool, error) {
	r, err := bus.ParseCommandResult(data)
	if err != nil {
		return "", nil, false, err
	}
	if subject != bus.CommandResultSubject(r.Node, r.Resource) {
		return "", nil, false, fmt.Errorf("outcome of %s.%s on %s", r.Node, r.Resource, subject)
	}
	o := outcomeMsg{Type: typeOutcome, Command: r.Command, UID: r.Node, Endpoint: r.Resource, OK: r.OK,
		Code: r.Code, Error: r.Error, TS: millis(r.Time)}
	return "outcome\x00" + r.Command, mustFrame(o, "", true), false, nil
}
