package main

import (
	"context"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/goaiot/goaiot/internal/readiness"
)

// readier is a part that binds its sockets or subscribes as it starts
// running; a part without Ready is ready as soon as it runs.
type readier interface {
	Ready() <-chan struct{}
}

// awaitReady waits until every part is ready, then says so once: the
// "ready" log line, /healthz (through sys.readiness) and --ready-file.
func (s *system) awaitReady(ctx context.Context, runners []runner, began time.Time) error {
	for _, r := range runners {
		rd, ok := r.(readier)
		if !ok {
			continue
		}
		select {
		case <-rd.Ready():
		case <-ctx.Done():
			return nil
		}
	}
	took := time.Since(began)
	rep := readiness.Report{Ready: true, PID: os.Getpid(), TookMS: float64(took.Microseconds()) / 1000,
		Addrs: s.boundAddrs(), URLs: s.urls()}
	s.ready.Store(&rep)
	s.log.Info("ready", "took", took.Round(time.Millisecond), "addrs", rep.Addrs)
	if s.opts.readyFile == "" {
		return nil
	}
	return readiness.WriteFile(s.opts.readyFile, rep)
}

// readiness is what /healthz says: ready, and the bound addresses.
func (s *system) readiness() (bool, map[string]string) {
	rep := s.ready.Load()
	if rep == nil {
		return false, nil
	}
	return true, rep.Addrs
}

// urls are the listeners whose URL says more than their address: the
// scheme tells TLS.
func (s *system) urls() map[string]string {
	urls := map[string]string{}
	if s.httpURL != "" {
		urls["http"] = s.httpURL
	}
	if s.server != nil && s.server.ClientURL() != "" {
		urls["nats"] = s.server.ClientURL()
	}
	return urls
}

// boundAddrs lists every listener of this process by name (see package
// internal/readiness), as bound.
func (s *system) boundAddrs() map[string]string {
	addrs := map[string]string{}
	put := func(name, addr string) {
		if addr != "" {
			addrs[name] = addr
		}
	}
	if s.httpAddr != nil {
		put("http", s.httpAddr.String())
	}
	if s.server != nil {
		if u, err := url.Parse(s.server.ClientURL()); err == nil {
			put("nats", u.Host)
		}
		put("mqtt", s.server.MQTTAddr())
		put("leafnodes", s.server.LeafAddr())
		put("nats_cluster", s.server.ClusterAddr())
		put("nats_monitor", s.server.MonitorAddr())
	}
	for name, r := range s.built {
		if l, ok := r.(interface{ Addr() net.Addr }); ok && l.Addr() != nil {
			put(name, l.Addr().String())
		}
		if l, ok := r.(interface{ DTLSAddr() net.Addr }); ok && l.DTLSAddr() != nil {
			put(name+"_dtls", l.DTLSAddr().String())
		}
	}
	return addrs
}
