package sites

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// HubDomain is the JetStream domain of the hub's server. A site may not be
// named after it.
const HubDomain = "hub"

// Subjects of the multi-site tree. <site> is a site name.
const (
	// SubjectAllHeartbeats matches every site's heartbeat.
	SubjectAllHeartbeats = "aiot.site.*.heartbeat"
	// SubjectAllLinks matches every site's link state (published by the hub).
	SubjectAllLinks = "aiot.site.*.link"
	// SubjectCollision carries node id collisions across sites (hub).
	SubjectCollision = "aiot.sites.collision"
	// SubjectList answers a request with the state of every site (hub).
	SubjectList = "aiot.sites"
)

// SubjectHeartbeat is aiot.site.<site>.heartbeat, published by a site.
func SubjectHeartbeat(site string) string { return "aiot.site." + site + ".heartbeat" }

// SubjectLink is aiot.site.<site>.link, published by the hub on a change.
func SubjectLink(site string) string { return "aiot.site." + site + ".link" }

// SubjectTree is every subject of one site's own tree: what only that site
// may publish besides node.> (see LeafPermissions).
func SubjectTree(site string) string { return "aiot.site." + site + ".>" }

// Link states.
const (
	LinkUp   = "up"
	LinkDown = "down"
)

// siteName is what a site may be called: one subject token that is also a
// valid JetStream domain.
var siteName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateName reports why name cannot be a site name, or nil.
func ValidateName(name string) error {
	if !siteName.MatchString(name) {
		return fmt.Errorf("site name %q: want 1-64 letters, digits, '-' or '_'", name)
	}
	if name == HubDomain {
		return fmt.Errorf("site name %q: reserved for the hub's JetStream domain", name)
	}
	return nil
}

// Heartbeat is the payload of aiot.site.<site>.heartbeat.
type Heartbeat struct {
	Site string `json:"site"`
	// Time is when it was sent, in milliseconds since the Unix epoch.
	Time int64 `json:"ts"`
	// Interval is the site's heartbeat period in milliseconds: the hub marks
	// the site down after missing three.
	Interval int64 `json:"interval_ms"`
	// Nodes are the ids of the nodes online at the site, sorted.
	Nodes []string `json:"nodes"`
	// Instance is random per site process: two instances heartbeating
	// under one name are two sites given the same name.
	Instance string `json:"instance,omitempty"`
}

// ParseHeartbeat decodes and checks a heartbeat.
func ParseHeartbeat(data []byte) (Heartbeat, error) {
	var h Heartbeat
	if err := json.Unmarshal(data, &h); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: %w", err)
	}
	if err := ValidateName(h.Site); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: %w", err)
	}
	if h.Interval <= 0 {
		return Heartbeat{}, fmt.Errorf("heartbeat: interval %d ms", h.Interval)
	}
	return h, nil
}

// Link is the payload of aiot.site.<site>.link. Its shape is the dashboard's
// browser message {"type":"site",…}, so it can be passed on as it is.
type Link struct {
	Type string `json:"type"` // always "site"
	Site string `json:"site"`
	Link string `json:"link"` // LinkUp or LinkDown
	Time int64  `json:"ts"`
}

// Collision is the payload of aiot.sites.collision: a node id online at more
// than one site. Sites lists them, sorted; fewer than two means the
// collision is over. Its shape is a browser message {"type":"collision",…}.
type Collision struct {
	Type  string   `json:"type"` // always "collision"
	UID   string   `json:"uid"`
	Sites []string `json:"sites"`
	Time  int64    `json:"ts"`
}

// SiteInfo is one site as the hub sees it, in the answer to aiot.sites.
type SiteInfo struct {
	Site     string    `json:"site"`
	Link     string    `json:"link"`
	LastSeen time.Time `json:"last_seen"`
	Nodes    int       `json:"nodes"`
	Sourced  bool      `json:"sourced"`
}

func millis(t time.Time) int64 { return t.UnixMilli() }
