package bus

import (
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

// leafListenerOptions applies LeafTLS and interest isolation to the leaf
// listener; leaf users are checked by the server's authenticator (edgeAuth).
func leafListenerOptions(o *server.Options, cfg ServerConfig) error {
	o.LeafNode.TLSConfig = cfg.LeafTLS
	o.LeafNode.IsolateLeafnodeInterest = cfg.LeafIsolate
	return nil
}
