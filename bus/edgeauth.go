package bus

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// ClientNodeIDs are the node ids an MQTT or MQTT-SN client id speaks for:
// the client id itself and, for a client id "mqtt-<id>" (the convention of
// Pyaiot's MQTT firmware and of goaiot's simulators), <id> too. Ids that are
// not valid node ids are left out.
func ClientNodeIDs(clientID string) []string {
	var ids []string
	if ValidateNodeID(clientID) == nil {
		ids = append(ids, clientID)
	}
	if id, ok := strings.CutPrefix(clientID, "mqtt-"); ok && ValidateNodeID(id) == nil {
		ids = append(ids, id)
	}
	return ids
}

// SpeaksFor reports whether a client with clientID may speak for node id
// (see ClientNodeIDs).
func SpeaksFor(clientID, id string) bool {
	if ValidateNodeID(id) != nil {
		return false
	}
	return id == clientID || clientID == "mqtt-"+id
}

// NodePermissions are the rights of the connection of nodes ids (usually
// one, see ClientNodeIDs): each publishes
// only its own values and resource list (node.<id>.<res>, never its $state,
// which belongs to the owning gateway) and node.check, and receives only its
// own commands and discovery (gateway.<id>.>) and gateway.check. Nothing
// else: no $JS, $SYS, _INBOX, aiot.> nor another node's subjects.
//
// A node.check may still name another id: the node logic only claims an id
// once a message on that id's own subjects proves it (gateways/mqtt).
func NodePermissions(ids ...string) *server.Permissions {
	p := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{SubjectNodeCheck}},
		Subscribe: &server.SubjectPermission{Allow: []string{SubjectGatewayCheck}},
	}
	for _, id := range ids {
		p.Publish.Allow = append(p.Publish.Allow, "node."+id+".*")
		p.Publish.Deny = append(p.Publish.Deny, NodeState(id))
		// An MQTT filter gateway/<id>/# subscribes gateway.<id> as well.
		p.Subscribe.Allow = append(p.Subscribe.Allow, "gateway."+id, "gateway."+id+".>")
	}
	return p
}

// edgeAuth is the embedded server's authenticator (nats-server's
// CustomClientAuthentication), with or without --auth. It gives every
// connection the rights of who it is:
//
//   - an nkey or a user with a password from Auth: that user's role;
//   - a leaf node: a LeafUser's login and permissions (any leaf when there
//     are no leaf users);
//   - an MQTT client without credentials: the node whose id is its MQTT
//     client id (ClientNodeIDs, NodePermissions), when MQTT anonymous access is on (always
//     without Auth); a client id that is not a valid node id is refused;
//   - a user of role node (nkey or password): the node whose id is its name;
//   - a NATS client without credentials: admin, only without Auth (the
//     loopback default of `aiot run`; see ServerConfig.Listen).
//
// nats-server does not hand the MQTT client id to a custom authenticator;
// it is read from the connection's description, which nats-server sets to
// `<addr> - mid:<n> - "<client id>"` before authenticating an MQTT CONNECT.
// TestMQTTClientIDFromDescription pins that format.
type edgeAuth struct {
	log *slog.Logger
	// open: no Auth; plain NATS clients without credentials are admin.
	open          bool
	mqttAnonymous bool
	nkeys         map[string]*server.Permissions
	users         map[string]passwordUser
	leafs         map[string]LeafUser

	mu      sync.Mutex
	account *server.Account // the global account, set once the server exists
	lastLog time.Time
	refused atomic.Int64
}

type passwordUser struct {
	hash  string
	perms *server.Permissions
}

func newEdgeAuth(cfg ServerConfig) (*edgeAuth, error) {
	a := &edgeAuth{log: cfg.Logger.With("component", "nats-auth"), open: cfg.Auth == nil, mqttAnonymous: true,
		nkeys: map[string]*server.Permissions{}, users: map[string]passwordUser{}, leafs: map[string]LeafUser{}}
	if cfg.Auth != nil {
		a.mqttAnonymous = cfg.Auth.MQTTAnonymous
		for _, u := range cfg.Auth.Users {
			if err := u.validate(); err != nil {
				return nil, fmt.Errorf("auth: %w", err)
			}
			perms, _ := RolePermissions(u.Role) // validated
			if u.Role == RoleNode {
				// A node user speaks only for the node its name says.
				if err := ValidateNodeID(u.Name); err != nil {
					return nil, fmt.Errorf("auth: node user: %w", err)
				}
				perms = NodePermissions(u.Name)
			}
			if u.Nkey != "" {
				a.nkeys[u.Nkey] = perms
				continue
			}
			a.users[u.Name] = passwordUser{hash: u.Password, perms: perms}
		}
	}
	for _, u := range cfg.LeafUsers {
		switch {
		case u.User == "" || u.Password == "":
			return nil, fmt.Errorf("leaf user: empty name or password")
		case a.leafs[u.User].User != "":
			return nil, fmt.Errorf("leaf user %q: listed twice", u.User)
		}
		a.leafs[u.User] = u
	}
	return a, nil
}

// bind sets the account every connection joins (nats-server's global one).
func (a *edgeAuth) bind(acc *server.Account) {
	a.mu.Lock()
	a.account = acc
	a.mu.Unlock()
}

// Check implements server.Authentication.
func (a *edgeAuth) Check(c server.ClientAuthentication) bool {
	perms, ok, why := a.decide(c)
	if !ok {
		a.refuse(c, why)
		return false
	}
	a.mu.Lock()
	acc := a.account
	a.mu.Unlock()
	c.RegisterUser(&server.User{Username: a.userName(c), Permissions: perms, Account: acc})
	return true
}

func (a *edgeAuth) decide(c server.ClientAuthentication) (*server.Permissions, bool, string) {
	o := c.GetOpts()
	if c.Kind() == server.LEAF {
		return a.decideLeaf(o)
	}
	mqttID, isMQTT := MQTTClientID(c)
	switch {
	case o.Nkey != "":
		perms, known := a.nkeys[o.Nkey]
		if !known || !verifyNonce(o.Nkey, o.Sig, c.GetNonce()) {
			return nil, false, "unknown nkey or bad signature"
		}
		return perms, true, ""
	case o.Username != "":
		u, known := a.users[o.Username]
		if !known || bcrypt.CompareHashAndPassword([]byte(u.hash), []byte(o.Password)) != nil {
			return nil, false, "unknown user or wrong password"
		}
		return u.perms, true, ""
	case isMQTT:
		if !a.mqttAnonymous {
			return nil, false, "anonymous MQTT clients are not allowed"
		}
		ids := ClientNodeIDs(mqttID)
		if len(ids) == 0 {
			return nil, false, fmt.Sprintf("MQTT client id %q is not a node id", mqttID)
		}
		return NodePermissions(ids...), true, ""
	case a.open:
		return nil, true, "" // admin: no Auth, the listener is loopback unless told otherwise
	}
	return nil, false, "no credentials"
}

func (a *edgeAuth) decideLeaf(o *server.ClientOpts) (*server.Permissions, bool, string) {
	if len(a.leafs) == 0 {
		return nil, true, ""
	}
	u, known := a.leafs[o.Username]
	if !known || !leafPasswordOK(u.Password, o.Password) {
		return nil, false, "unknown leaf user or wrong password"
	}
	if u.Publish == nil {
		return nil, true, ""
	}
	// Seen from the leaf: what it may publish, i.e. send here.
	return &server.Permissions{Publish: &server.SubjectPermission{Allow: u.Publish}}, true, ""
}

func leafPasswordOK(want, got string) bool {
	if strings.HasPrefix(want, "$2") {
		return bcrypt.CompareHashAndPassword([]byte(want), []byte(got)) == nil
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// userName is what nats-server reports for the connection (connz, events).
func (a *edgeAuth) userName(c server.ClientAuthentication) string {
	o := c.GetOpts()
	if o.Username != "" {
		return o.Username
	}
	if id, ok := MQTTClientID(c); ok {
		return "mqtt-node:" + id
	}
	return ""
}

func (a *edgeAuth) refuse(c server.ClientAuthentication, why string) {
	a.refused.Add(1)
	a.mu.Lock()
	now := time.Now()
	quiet := now.Sub(a.lastLog) < time.Second
	if !quiet {
		a.lastLog = now
	}
	a.mu.Unlock()
	if !quiet {
		a.log.Warn("connection refused", "remote", c.RemoteAddress(), "why", why, "refused_total", a.refused.Load())
	}
}

func verifyNonce(nkey, sig string, nonce []byte) bool {
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return false
		}
	}
	pub, err := nkeys.FromPublicKey(nkey)
	if err != nil || len(nonce) == 0 {
		return false
	}
	return pub.Verify(nonce, raw) == nil
}

// MQTTClientID returns the MQTT client id of a connection being
// authenticated, and whether it is an MQTT connection at all. See edgeAuth.
func MQTTClientID(c server.ClientAuthentication) (string, bool) {
	s, ok := c.(fmt.Stringer)
	if !ok {
		return "", false
	}
	return mqttIDFromDescription(s.String())
}

func mqttIDFromDescription(desc string) (string, bool) {
	if !strings.Contains(desc, " - mid") {
		return "", false
	}
	i := strings.LastIndex(desc, ` - "`)
	if i < 0 {
		return "", false
	}
	id, err := strconv.Unquote(desc[i+3:])
	if err != nil {
		return "", false
	}
	return id, true
}
