package main

import (
	"flag"
	"fmt"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/tlsconfig"
)

// clusterOptions are the flags that make the embedded server a member of
// a NATS cluster (bus.ClusterConfig): `aiot run`, `aiot hub` and
// `aiot site` on several machines, one NATS with replicated streams.
type clusterOptions struct {
	listen     string
	advertise  string
	name       string
	serverName string
	routes     listFlag
	insecure   bool
	tls        tlsFlags
}

func (c *clusterOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "cluster-listen", "", "NATS cluster (route) listener, host:port, e.g. 0.0.0.0:6222: with --routes this server joins a NATS cluster (empty: a single server)")
	fs.Var(&c.routes, "routes", "the cluster members' route URLs, nats-route://host:6222 (its own may be listed); repeatable, comma-separated")
	fs.StringVar(&c.name, "cluster-name", "aiot", "NATS cluster name, the same on every member")
	fs.StringVar(&c.advertise, "cluster-advertise", "", "host:port the other members reach this one's --cluster-listen at (behind NAT, in containers)")
	fs.StringVar(&c.serverName, "server-name", "", "this NATS server's name, unique in the cluster (default aiot-<site>, or aiot-hub; in a cluster with -<gateway-name> added)")
	fs.BoolVar(&c.insecure, "insecure-cluster", false, "allow a --cluster-listen reachable from other hosts without --cluster-tls-ca: anyone there can join the cluster and read or change everything")
	c.tls.register(fs, "cluster-tls", "routes between cluster members", "every member's certificate (then required both ways)")
}

// config is the cluster of the embedded server; nil without --cluster-listen.
func (c *clusterOptions) config() (*bus.ClusterConfig, error) {
	if c.listen == "" {
		if len(c.routes) > 0 {
			return nil, fmt.Errorf("--routes without --cluster-listen: a member must listen for the others' routes")
		}
		return nil, nil
	}
	if c.tls.files.CA == "" && !c.insecure && !loopbackListen(c.listen) {
		return nil, fmt.Errorf("--cluster-listen %s without --cluster-tls-ca: any host reaching it could join the cluster, read every value and command every node; "+
			"give --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca (one CA for all members), listen on 127.0.0.1, or accept it with --insecure-cluster", c.listen)
	}
	t, err := tlsconfig.Server(c.tls.files)
	if err != nil {
		return nil, fmt.Errorf("--cluster-tls: %w", err)
	}
	if t != nil && t.ClientCAs != nil {
		t.RootCAs = t.ClientCAs // routes dial out with the same config: trust the cluster's CA
	}
	return &bus.ClusterConfig{Name: c.name, Listen: c.listen, Advertise: c.advertise, Routes: c.routes, TLS: t}, nil
}

// apply sets cfg's cluster and server name.
func (c *clusterOptions) apply(cfg *bus.ServerConfig, gateway string) error {
	cl, err := c.config()
	if err != nil {
		return err
	}
	cfg.Cluster = cl
	switch {
	case c.serverName != "":
		cfg.Name = c.serverName
	case cl != nil:
		cfg.Name += "-" + gateway
	}
	return nil
}
