package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestRefuseFlags: the hub refuses the flags of parts it does not run,
// whether given as --f v, --f=v or a boolean, and nothing else: not a flag
// it runs, not a gateway flag's name given as another flag's value.
func TestRefuseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // "" : accepted
	}{
		{"no flags", nil, ""},
		{"hub flags", []string{"--leaf-listen", ":0", "--users", "f", "--sites", "a,b"}, ""},
		{"gateway flag", []string{"--leaf-listen", ":0", "--mqtt-broker", "tcp://x:1"}, "--mqtt-broker: a flag of the mqtt part"},
		{"gateway flag with =", []string{"--coap-nodes=2"}, "--coap-nodes: a flag of the sim part"},
		{"boolean flag of a part the hub runs (the queue)", []string{"--queue", "--users", "f"}, ""},
		{"gateway flag name as a value", []string{"--users", "--mqtt-broker"}, ""},
		{"unknown flag left to the real parse", []string{"--nope"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("aiot hub", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var opts options
			opts.register(fs, true)
			topo := &hubTopology{}
			topo.register(fs)
			for _, p := range hubParts() {
				p.register(fs)
			}
			err := refuseFlags(tt.args, fs, topo.refusedParts())
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("refuseFlags(%q) = %v; want %q", tt.args, err, tt.want)
			}
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if len(topo.sites) != 0 {
				t.Errorf("refuseFlags set --sites to %v: it must set nothing", topo.sites)
			}
		})
	}
}
