// Package readiness is what aiot says once it is ready, for the programs
// that start it: the file of `aiot --ready-file PATH` and the "ready" and
// "addrs" of /healthz.
//
// A process is ready once every part has bound its listeners and serves
// (the embedded NATS server, the HTTP listener, every gateway's sockets,
// the dashboard's snapshot). The file is written once, atomically (a
// temporary file in the same directory, then a rename), as one JSON
// object:
//
//	{"ready":true,"pid":4242,"took_ms":21.4,
//	 "addrs":{"http":"127.0.0.1:8080","nats":"127.0.0.1:4222","mqtt":"127.0.0.1:1883",
//	          "coap":"127.0.0.1:5683","mqttsn":"127.0.0.1:1885"},
//	 "urls":{"http":"http://127.0.0.1:8080","nats":"nats://127.0.0.1:4222"}}
//
// Addresses are host:port as bound (port 0 resolved), by listener:
// http, nats, mqtt, leafnodes, nats_monitor, coap, coap_dtls, mqttsn,
// pprof; a listener that is off is absent. URLs add the scheme where one
// tells how to connect (https with TLS, tls:// for a NATS server with
// TLS). aiot removes the file when it starts and when it stops, and pid
// tells a launcher that the file is its child's.
package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Report is the content of the ready file.
type Report struct {
	Ready  bool              `json:"ready"`
	PID    int               `json:"pid"`
	TookMS float64           `json:"took_ms"`
	Addrs  map[string]string `json:"addrs"`
	URLs   map[string]string `json:"urls"`
}

// WriteFile writes r to path atomically: a reader sees no file or all of it.
func WriteFile(path string, r Report) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("ready file: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("ready file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

// ReadFile reads the ready file at path.
func ReadFile(path string) (Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Report{}, fmt.Errorf("ready file: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return Report{}, fmt.Errorf("ready file %s: %w", path, err)
	}
	return r, nil
}

// Remove removes the ready file at path, if there is one.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

// ErrExited is returned by Wait when the process exited before it was
// ready.
var ErrExited = errors.New("exited before it was ready")

// Wait polls path every few milliseconds until it holds the ready report
// of process pid, the process exits (exited is closed) or ctx ends.
func Wait(ctx context.Context, path string, pid int, exited <-chan struct{}) (Report, error) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if r, err := ReadFile(path); err == nil && r.Ready && r.PID == pid {
			return r, nil
		}
		select {
		case <-exited:
			return Report{}, ErrExited
		case <-ctx.Done():
			return Report{}, fmt.Errorf("ready file %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}
