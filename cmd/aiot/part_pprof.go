package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// pprofPart serves Go's profiles (net/http/pprof) on a listener of its own,
// for profiling a running system (`go tool pprof
// http://127.0.0.1:6060/debug/pprof/profile?seconds=20`), block and mutex
// profiles included (sampled while --pprof is on). Off by default.
func pprofPart() part {
	return part{
		name:    "pprof",
		summary: "debug: Go profiles (net/http/pprof) on --pprof, off by default",
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var addr string
			fs.StringVar(&addr, "pprof", "", "debug: serve Go profiles at http://<addr>/debug/pprof/ (keep it on loopback; empty: off)")
			return func(sys *system) (runner, error) {
				if addr == "" {
					return noSim{}, nil
				}
				if _, _, err := net.SplitHostPort(addr); err != nil {
					return nil, fmt.Errorf("--pprof %q: %w", addr, err)
				}
				return &pprofServer{listen: addr, sys: sys, ready: make(chan struct{})}, nil
			}
		},
	}
}

// pprofServer serves the profiles until ctx ends.
type pprofServer struct {
	listen string
	sys    *system
	ready  chan struct{} // closed once bound at addr
	addr   net.Addr
}

// Ready is closed once the listener is bound.
func (p *pprofServer) Ready() <-chan struct{} { return p.ready }

// Addr is the bound address, nil before Ready.
func (p *pprofServer) Addr() net.Addr {
	select {
	case <-p.ready:
		return p.addr
	default:
		return nil
	}
}

func (p *pprofServer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	p.addr = ln.Addr()
	// Block and mutex profiles record nothing unless asked: a blocking
	// event every 10 µs blocked, one mutex contention in 10.
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	runtime.SetMutexProfileFraction(10)
	close(p.ready)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p.sys.log.Info("listening", "what", "pprof", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	err = serveHTTP(ctx, hs, ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
