package bus

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// LeafUser is one login accepted on the leaf node listener, typically one
// per site, with what that site may send into this server.
type LeafUser struct {
	User string
	// Password in clear or as a bcrypt hash ("$2a$…").
	Password string
	// Publish, when not nil, are the only subjects the leaf may send into
	// this server (wildcards allowed). nats-server drops anything else,
	// logs a permission violation and closes the leaf connection (which
	// reconnects).
	Publish []string
}

// leafAnonymous is the user that NATS clients without credentials become on
// a server that has leaf users but no client Auth: leaf users are server
// users, and any server user makes nats-server require a login of everyone.
const leafAnonymous = "aiot-anonymous-client"

// leafListenerOptions applies LeafUsers and LeafTLS to the leaf listener.
// Leaf users are nats-server users limited to leaf connections: only those
// carry permissions (the leafnode section's own users carry none).
func leafListenerOptions(o *server.Options, cfg ServerConfig) error {
	o.LeafNode.TLSConfig = cfg.LeafTLS
	o.LeafNode.IsolateLeafnodeInterest = cfg.LeafIsolate
	if len(cfg.LeafUsers) == 0 {
		return nil
	}
	leafOnly := map[string]struct{}{"LEAFNODE": {}}
	seen := map[string]bool{}
	for _, u := range cfg.LeafUsers {
		switch {
		case u.User == "" || u.Password == "":
			return errors.New("leaf user: empty name or password")
		case seen[u.User] || u.User == leafAnonymous:
			return fmt.Errorf("leaf user %q: listed twice or reserved", u.User)
		}
		seen[u.User] = true
		su := &server.User{Username: u.User, Password: u.Password, AllowedConnectionTypes: leafOnly}
		if u.Publish != nil {
			// Seen from the leaf: what it may publish, i.e. send here.
			su.Permissions = &server.Permissions{Publish: &server.SubjectPermission{Allow: u.Publish}}
		}
		o.Users = append(o.Users, su)
	}
	if cfg.Auth != nil {
		return nil // clients sign in as Auth says
	}
	// Nobody knows this password: clients without credentials map to the
	// user (nats-server then compares the password with itself, so it must
	// not be a hash).
	o.Users = append(o.Users, &server.User{Username: leafAnonymous, Password: rand.Text(),
		AllowedConnectionTypes: map[string]struct{}{"STANDARD": {}, "WEBSOCKET": {}, "MQTT": {}, "IN_PROCESS": {}}})
	o.NoAuthUser = leafAnonymous
	return nil
}
