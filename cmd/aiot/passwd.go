package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/goaiot/goaiot/services/dashboard"
)

// passwdCommand is `aiot passwd --users FILE [--role R] NAME`: add or
// replace a dashboard user with a bcrypt hash of a password read from the
// terminal (twice, not echoed) or from the first line of standard input.
func passwdCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("aiot passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	users := fs.String("users", "aiot-users", "users file of the dashboard (--users of aiot run); made if missing, mode 0600")
	role := fs.String("role", dashboard.RoleOperator, "operator (may send commands) or viewer")
	fs.Usage = usage(fs, "aiot passwd [--users FILE] [--role operator|viewer] NAME   (password from the terminal or stdin)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	name := fs.Arg(0)
	pw, err := readPassword(os.Stdin, stderr)
	if err != nil {
		return err
	}
	if err := dashboard.SetUser(*users, name, pw, *role); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: user %s (%s) saved; start the dashboard with --users %s\n", *users, name, *role, *users)
	return nil
}

// readPassword reads a password: from a terminal twice without echo,
// otherwise the first line of in.
func readPassword(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return "", fmt.Errorf("password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(prompt, "password: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	fmt.Fprint(prompt, "again: ")
	again, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	if string(pw) != string(again) {
		return "", errors.New("the passwords differ")
	}
	return string(pw), nil
}
