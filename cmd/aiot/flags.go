package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// envName is the environment twin of a flag: --coap-listen → AIOT_COAP_LISTEN.
func envName(flagName string) string {
	return "AIOT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its AIOT_* environment variable. Its errors are flag.ErrHelp,
// errUsage (the flag package has printed what is wrong and the usage), or
// one that says what is wrong, to be printed.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// usage prints a role's flags with their environment twins.
func usage(fs *flag.FlagSet, line string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n\nflags (each also read from its AIOT_* environment variable):\n", line)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s  [%s]%s\n      %s\n", f.Name, envName(f.Name), def, f.Usage)
		})
	}
}

// listFlag is a repeatable string flag; from the environment it takes a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// refusedFlagsOf is a topology that refuses the flags of some parts of
// `aiot run`, which it does not run (the hub's gateways).
type refusedFlagsOf interface {
	refusedParts() []part
}

// refuseFlags returns an error naming the first flag of args that belongs
// to one of the refused parts, or nil. It parses args with stand-ins of
// every flag of fs plus the refused parts' flags, so that values are told
// from flags as the real parse will, and nothing is set; a parse error is
// left to the real parse, which reports it.
func refuseFlags(args []string, fs *flag.FlagSet, refused []part) error {
	scratch := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	scratch.SetOutput(io.Discard)
	fs.VisitAll(func(f *flag.Flag) { scratch.Var(standIn(f.Value), f.Name, "") })
	owner := map[string]string{}
	for _, p := range refused {
		pfs := flag.NewFlagSet(p.name, flag.ContinueOnError)
		p.register(pfs)
		pfs.VisitAll(func(f *flag.Flag) {
			if scratch.Lookup(f.Name) == nil {
				scratch.Var(standIn(f.Value), f.Name, "")
				owner[f.Name] = p.name
			}
		})
	}
	if scratch.Parse(args) != nil {
		return nil
	}
	var err error
	scratch.Visit(func(f *flag.Flag) {
		if part := owner[f.Name]; part != "" && err == nil {
			err = fmt.Errorf("--%s: a flag of the %s part, which does not run here (gateways run at sites: aiot site)", f.Name, part)
		}
	})
	return err
}

// shadow is a flag value that takes anything and keeps nothing.
type shadow struct{ boolean bool }

func (shadow) String() string     { return "" }
func (shadow) Set(string) error   { return nil }
func (s shadow) IsBoolFlag() bool { return s.boolean }

// standIn is a shadow parsed as v is: with or without a value.
func standIn(v flag.Value) flag.Value {
	b, ok := v.(interface{ IsBoolFlag() bool })
	return shadow{boolean: ok && b.IsBoolFlag()}
}
