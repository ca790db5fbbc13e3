package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"

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

// checkNATSListen refuses an embedded NATS client listener that other hosts
// can reach when clients need not sign in, unless --insecure-nats.
func (o *options) checkNATSListen() error {
	if o.natsListen == "" || o.auth != "" || o.authDir != "" || o.insecureNATS || loopbackListen(o.natsListen) {
		return nil
	}
	return fmt.Errorf("--nats-listen %s without --auth: anyone reaching it could command every node and delete the history; "+
		"give --auth-dir DIR (keys made on first start) or --auth FILE, listen on 127.0.0.1, or accept it with --insecure-nats", o.natsListen)
}

// loopbackListen tells whether addr (host:port) listens on loopback only.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false // an empty host is every interface
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authFile is the auth.json to use: --auth, or --auth-dir's, whose keys are
// generated on first start (and logged: where the admin and viewer keys
// are, how to use them). Empty: no auth.
func (s *system) authFile() (string, error) {
	o := s.opts
	if o.auth != "" && o.authDir != "" {
		return "", errors.New("--auth and --auth-dir: give one")
	}
	if o.authDir == "" {
		return o.auth, nil
	}
	path := filepath.Join(o.authDir, "auth.json")
	if _, err := os.Stat(path); err == nil {
		s.log.Info("nats keys", "dir", o.authDir, "admin", filepath.Join(o.authDir, "admin.nk"), "viewer", filepath.Join(o.authDir, "viewer.nk"))
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--auth-dir: %w", err)
	}
	if _, err := bus.GenerateKeys(o.authDir, true); err != nil {
		return "", fmt.Errorf("--auth-dir: %w", err)
	}
	viewer := filepath.Join(o.authDir, "viewer.nk")
	s.log.Info("nats keys generated: copy a role's seed file to use it (docker compose cp SERVICE:"+viewer+" .)",
		"dir", o.authDir, "admin", filepath.Join(o.authDir, "admin.nk"), "viewer", viewer,
		"try", "nats --nkey viewer.nk --inbox-prefix "+bus.InboxPrefix(bus.RoleViewer)+" sub 'node.>'")
	return path, nil
}

// loadAuth reads --auth (or --auth-dir) and adds one fresh identity per
// role for this process's own in-process parts (never written anywhere).
func (s *system) loadAuth() (*bus.Auth, error) {
	path, err := s.authFile()
	if err != nil || path == "" {
		return nil, err
	}
	auth, err := bus.LoadAuth(path)
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
		return err
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
	fmt.Fprintf(stdout, "ops, read-only:      nats --nkey %s/viewer.nk --inbox-prefix %s sub 'node.>'\n", *dir, bus.InboxPrefix(bus.RoleViewer))
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
