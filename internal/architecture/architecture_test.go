package architecture

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// rule is one arrow that must never exist: from a package it applies to
// (path relative to the module) to a dependency it forbids.
type rule struct {
	name    string
	applies func(pkg string) bool
	forbids func(pkg, dep string) bool
}

// under reports whether pkg is dir or inside it.
func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// gatewayOf is the gateway folder pkg belongs to: "coap" for
// gateways/coap/coapsim.
func gatewayOf(pkg string) string {
	parts := strings.SplitN(pkg, "/", 3)
	if len(parts) < 2 || parts[0] != "gateways" {
		return ""
	}
	return parts[1]
}

// rules are ARCHITECTURE.md's "arrows that must never exist".
var rules = []rule{
	{"bus knows no protocol: bus depends on no other package of the project",
		func(p string) bool { return under(p, "bus") },
		func(_, d string) bool { return !under(d, "bus") }},
	{"internal packages depend on no package of the project but bus",
		func(p string) bool { return under(p, "internal") },
		func(_, d string) bool { return !under(d, "bus") }},
	{"gateways meet only on subjects: a gateway depends on no other gateway but the shared gateways/presence and gateways/persist",
		func(p string) bool { return under(p, "gateways") },
		func(p, d string) bool {
			g := gatewayOf(d)
			return g != "" && g != gatewayOf(p) && g != "presence" && g != "persist"
		}},
	{"services never depend on gateways",
		func(p string) bool { return under(p, "services") },
		func(_, d string) bool { return under(d, "gateways") }},
	{"sites depends on no gateway and no service",
		func(p string) bool { return under(p, "sites") },
		func(_, d string) bool { return under(d, "gateways") || under(d, "services") }},
	{"nothing depends on cmd, faults, attacks or deploy; only cmd/aiot on bench",
		func(string) bool { return true },
		func(p, d string) bool {
			return under(d, "cmd") || under(d, "faults") || under(d, "attacks") || under(d, "deploy") ||
				under(d, "bench") && !under(p, "cmd/aiot") && !under(p, "bench")
		}},
	{"the web app is embedded by the dashboard (and handed to it by cmd/aiot) only",
		func(string) bool { return true },
		func(p, d string) bool {
			return d == "webapp" && !under(p, "services/dashboard") && !under(p, "cmd/aiot")
		}},
}

// graph maps each package of the module (relative path; "" is the root) to
// its dependencies inside the module.
type graph map[string][]string

// check returns one line per forbidden arrow of g.
func check(g graph, rules []rule) []string {
	var bad []string
	for pkg, deps := range g {
		for _, r := range rules {
			if !r.applies(pkg) {
				continue
			}
			for _, d := range deps {
				if d != pkg && r.forbids(pkg, d) {
					bad = append(bad, pkg+" imports "+d+" (directly or not): forbidden, "+r.name)
				}
			}
		}
	}
	return bad
}

// moduleGraph reads the module's import graph with go list.
func moduleGraph(t *testing.T) graph {
	t.Helper()
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	prefix := strings.TrimSpace(string(mod))
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,Deps", prefix+"/...").Output()
	if err != nil {
		t.Fatalf("go list -json: %v", err)
	}
	g := graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		rel := func(s string) (string, bool) {
			if s == prefix {
				return "", true
			}
			r, ok := strings.CutPrefix(s, prefix+"/")
			return r, ok
		}
		pkg, _ := rel(p.ImportPath)
		g[pkg] = nil
		for _, d := range p.Deps {
			if r, ok := rel(d); ok {
				g[pkg] = append(g[pkg], r)
			}
		}
	}
	return g
}

// TestImportRules: the module's import graph has none of the arrows
// ARCHITECTURE.md forbids.
func TestImportRules(t *testing.T) {
	g := moduleGraph(t)
	for _, must := range []string{"bus", "gateways/coap", "services/dashboard", "sites", "cmd/aiot"} {
		if _, ok := g[must]; !ok {
			t.Fatalf("go list did not list %s: the graph is not the module's", must)
		}
	}
	for _, line := range check(g, rules) {
		t.Error(line)
	}
}

// TestCheckNamesForbiddenImports: the checker finds each kind of forbidden
// arrow and names both ends, and lets the allowed ones be.
func TestCheckNamesForbiddenImports(t *testing.T) {
	tests := []struct {
		name string
		g    graph
		want string // "": no complaint
	}{
		{"bus imports a gateway", graph{"bus": {"gateways/coap"}}, "bus imports gateways/coap"},
		{"gateway imports another", graph{"gateways/ws": {"bus", "gateways/mqtt/bridge"}}, "gateways/ws imports gateways/mqtt/bridge"},
		{"gateway imports its own sub-package and the shared ones", graph{"gateways/coap": {"gateways/coap/coapsim", "gateways/presence", "gateways/persist", "bus"}}, ""},
		{"service imports a gateway", graph{"services/dashboard": {"gateways/queue"}}, "services/dashboard imports gateways/queue"},
		{"internal imports a service", graph{"internal/linefile": {"services/dashboard"}}, "internal/linefile imports services/dashboard"},
		{"sites imports a service", graph{"sites": {"bus", "services/dashboard"}}, "sites imports services/dashboard"},
		{"a package imports cmd/aiot", graph{"bench": {"cmd/aiot"}}, "bench imports cmd/aiot"},
		{"a gateway imports bench", graph{"gateways/coap": {"bench"}}, "gateways/coap imports bench"},
		{"cmd/aiot imports everything", graph{"cmd/aiot": {"bench", "gateways/coap", "services/dashboard", "webapp"}}, ""},
		{"a gateway embeds the web app", graph{"gateways/ws": {"webapp"}}, "gateways/ws imports webapp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(check(tt.g, rules), "\n")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("check = %q; want %q", got, tt.want)
			}
		})
	}
}
