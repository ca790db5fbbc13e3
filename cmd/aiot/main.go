// Command aiot is goaiot's single binary: `aiot run` starts the whole system
// in one process (embedded NATS, every gateway, the dashboard); `aiot <role>`
// runs one part against an external NATS. Flags have AIOT_* environment twins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"

	"github.com/goaiot/goaiot/internal/version"
)

func main() {
	os.Exit(aiot(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one `aiot <name>` subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	cmds := map[string]command{
		"run":     {"start everything in one process: NATS, gateways, dashboard (--demo adds simulated nodes)", runAll},
		"version": {"print the version", printVersion},
		"hub":     {"multi-site hub: NATS with a leaf node listener (--leaf-listen) for the sites, their history, the dashboard", hubCommand},
		"site":    {"one site of a hub (--hub nats-leaf://host:7422 --site NAME): what `run` runs, on a NATS joined to the hub", siteCommand},
		"bench":   {"load tool: nodes and browsers against a running or self-started system; throughput, loss, latency, server CPU/RSS", benchCommand},
		"keys":    {"generate per-role NATS keys (nkeys) and auth.json for --auth", keysCommand},
		"passwd":  {"add or change a dashboard user (bcrypt) in a users file for --users", passwdCommand},
	}
	for _, p := range parts() {
		cmds[p.name] = command{p.summary + " (one role, against --nats)", roleCommand(p.name)}
	}
	return cmds
}

func aiot(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "aiot: unknown command %q (try 'aiot help')\n", args[0])
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "aiot %s: %v\n", args[0], err)
	return 1
}

// errUsage marks an error already explained by the flag package.
var errUsage = errors.New("usage")

func printHelp(w io.Writer, cmds map[string]command) {
	fmt.Fprintf(w, "aiot — goaiot, IoT nodes to the web over NATS (%s)\n\nusage: aiot <command> [flags]\n\ncommands:\n", versionString())
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\n'aiot <command> --help' lists a command's flags.")
}

// signalContext ends the context at the first SIGINT/SIGTERM; a second one
// exits at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "aiot: second signal, exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func printVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintln(stdout, versionString())
	return err
}

func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "aiot (unknown version)"
	}
	v := version.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += "+dirty"
		}
	}
	return "aiot " + v + " " + bi.GoVersion
}
