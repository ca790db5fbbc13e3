package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/ws"
)

// partRole is the bus role a part signs in with when auth is on.
func partRole(name string) bus.Role {
	switch name {
	case "core", "bench":
		return bus.RoleAdmin
	case "dashboard":
		return bus.RoleDashboard
	}
	return bus.RoleGateway
}

// loadAuth reads --auth and adds one fresh identity per role for this
// process's own in-process parts (never written anywhere).
func (s *system) loadAuth() (*bus.Auth, error) {
	if s.opts.auth == "" {
		return nil, nil
	}
	auth, err := bus.LoadAuth(s.opts.auth)
	if err != nil {
		return nil, err
	}
	s.identities = map[bus.Role]*bus.Identity{}
	for _, r := range []bus.Role{bus.RoleAdmin, bus.RoleGateway, bus.RoleDashboard} {
		id, err := bus.NewIdentity(r)
		if err != nil {
			return nil, err
		}
		s.identities[r] = id
		auth.Users = append(auth.Users, id.User("aiot-internal-"+string(r)))
	}
	return auth, nil
}

// identity is what part name signs in with: its in-process identity, the
// --nkey seed against an external NATS, or none.
func (s *system) identity(name string) (*bus.Identity, error) {
	role := partRole(name)
	if s.identities != nil {
		return s.identities[role], nil
	}
	if s.opts.nkey == "" {
		return nil, nil
	}
	return bus.LoadIdentity(s.opts.nkey, role)
}

// keysCommand is `aiot keys`: generate per-role nkeys and auth.json.
func keysCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aiot keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "aiot-keys", "directory for the seed files and auth.json")
	anon := fs.Bool("mqtt-anonymous", true, "let MQTT nodes without credentials in with the node role")
	var wsNodes listFlag
	fs.Var(&wsNodes, "ws-node-ids", "also write a token for each of these websocket node ids (comma-separated), for --ws-node-tokens")
	fs.Usage = usage(fs, "aiot keys [--dir DIR] [--ws-node-ids ID,ID]")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	for _, id := range wsNodes {
		if err := bus.ValidateNodeID(id); err != nil {
			return fmt.Errorf("--ws-node-ids %q: %w", id, err)
		}
	}
	auth, err := bus.GenerateKeys(*dir, *anon)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s/auth.json and one seed per role:\n", *dir)
	for _, u := range auth.Users {
		fmt.Fprintf(stdout, "  %-9s %s/%s.nk  %s\n", u.Role, *dir, u.Role, u.Nkey)
	}
	fmt.Fprintf(stdout, "start the hub with:  aiot run --auth %s/auth.json\n", *dir)
	fmt.Fprintf(stdout, "connect a role with: aiot coap --nats nats://HOST:4222 --nkey %s/gateway.nk\n", *dir)
	fmt.Fprintf(stdout, "ops, read-only:      nats --nkey %s/viewer.nk sub 'node.>'\n", *dir)
	if len(wsNodes) == 0 {
		return nil
	}
	path, err := ws.WriteTokens(*dir, wsNodes)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "websocket node tokens: aiot run --ws-node-tokens %s; node ID connects with ?token= or Authorization: Bearer <%s/ws-node-ID.token>\n", path, *dir)
	return nil
}
