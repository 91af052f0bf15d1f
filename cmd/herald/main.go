// SPDX-License-Identifier: Apache-2.0

// Command herald is a systemd-native gateway between chat platforms and an
// AI agent backend. main only parses the command line and maps errors to
// exit codes; the lifecycle is herald.Run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	_ "github.com/heraldgw/herald/pkg/adapter/all"
	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/paths"
	"github.com/heraldgw/herald/pkg/userinstall"
	"github.com/heraldgw/herald/pkg/version"
)

// command is one subcommand: its synopsis (after the name) and what it
// does, for the global usage and its own -h/--help.
type command struct {
	name, synopsis, about string
}

var commands = []command{
	{"run", "[--config FILE]", "run the gateway in the foreground (default: built-in demo configuration)"},
	{"check-config", "[--credentials-dir DIR] FILE", "validate a configuration file and exit (78 if invalid)"},
	{"reload", "[--config FILE | --admin-socket PATH] [--timeout D]", "make the running herald reload its configuration; waits until done"},
	{"status", "[--json] [--unit NAME] [--user] [--config FILE] [--admin-socket PATH]", "show the service and what herald is doing"},
	{"doctor", "[--json] [--unit NAME] [--user] [--config FILE] [--admin-socket PATH]", "check the installation and say what to fix"},
	{"install", "--user", "install and start herald as a service of your systemd user manager (no root needed)"},
	{"uninstall", "--user", "stop and remove the user service; keeps your configuration and state"},
	{"migrate", "hermes [--hermes-home DIR] [--profile NAME] [--out DIR] [--dry-run] [--force]", "write a herald configuration from a Hermes gateway's settings"},
	{"send", "--platform NAME [--chat ID] [--key KEY] [--wait D] [TEXT...]", "send a message to a chat through the durable outbox"},
	{"turn", "--platform NAME [--chat ID] [--user ID] [--key KEY] [--wait D] [TEXT...]", "run an agent turn as if the user wrote TEXT; the reply goes to the chat"},
	{"pairing", "list | approve PLATFORM CODE | revoke PLATFORM USER", "let users in with pairing codes (dm_policy: pairing)"},
	{"version", "", "print the version"},
}

// usage is the global usage text.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: herald <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		line := "  " + c.name + " " + c.synopsis
		if len(line) > 32 {
			fmt.Fprintf(&b, "%s\n%33s%s\n", line, "", c.about)
		} else {
			fmt.Fprintf(&b, "%-32s %s\n", line, c.about)
		}
	}
	b.WriteString("\n`herald <command> --help` describes a command's flags.\n")
	return b.String()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return herald.ExitUsage
	}
	name, args := args[0], args[1:]
	switch name {
	case "version", "--version", "-v":
		if name == "version" {
			fs := newFlagSet(name)
			if code, done := parse(fs, args, 0, stdout, stderr); done {
				return code
			}
		}
		fmt.Fprintln(stdout, version.String())
		return herald.ExitOK
	case "migrate":
		return runMigrate(args, stdout, stderr)
	case "send":
		return runSend(args, stdout, stderr)
	case "turn":
		return runTurn(args, stdout, stderr)
	case "pairing":
		return runPairing(args, stdout, stderr)
	case "help", "--help", "-h":
		if len(args) == 1 && args[0] == "migrate" {
			fmt.Fprint(stdout, migrateUsage)
			return herald.ExitOK
		}
		if len(args) == 1 {
			if fs := newFlagSet(args[0]); fs != nil {
				defineFlags(fs)
				printHelp(stdout, fs)
				return herald.ExitOK
			}
		}
		fmt.Fprint(stdout, usage())
		return herald.ExitOK
	}
	fs := newFlagSet(name)
	if fs == nil {
		fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", name, usage())
		return herald.ExitUsage
	}
	f := defineFlags(fs)
	switch name {
	case "run":
		if code, done := parse(fs, args, 0, stdout, stderr); done {
			return code
		}
		err := herald.Run(context.Background(), herald.Options{
			ConfigPath: *f.config,
			Stderr:     os.Stderr, // a *os.File: herald checks whether it is the journal
			OnListening: func(httpAddr, adminAddr string) {
				if *f.config == "" {
					fmt.Fprintf(os.Stderr, "herald: listening on http://%s (webhook: POST /hooks/webhook), admin socket %s; Ctrl-C stops\n", httpAddr, adminAddr)
				}
			},
			OnStopping: func(bound time.Duration) {
				// Last resort: the stop is bounded by construction; if it
				// ever overruns, exit rather than wait for SIGKILL.
				time.AfterFunc(bound+3*time.Second, func() {
					fmt.Fprintf(os.Stderr, "herald: stop did not finish within its bound of %v; exiting\n", bound)
					os.Exit(herald.ExitFailure)
				})
			},
		})
		return report(err, os.Stderr)
	case "check-config":
		if code, done := parse(fs, args, 1, stdout, stderr); done {
			return code
		}
		path := *f.config
		if fs.NArg() == 1 && path == "" {
			path = fs.Arg(0)
		}
		if path == "" || fs.NArg() == 1 && *f.config != "" {
			fmt.Fprintln(stderr, "herald check-config: give one configuration file")
			printHelp(stderr, fs)
			return herald.ExitUsage
		}
		return report(herald.CheckConfig(path, *f.credDir, stdout), stderr)
	case "reload":
		if code, done := parse(fs, args, 0, stdout, stderr); done {
			return code
		}
		path := *f.socket
		if path == "" {
			path = herald.AdminSocket(*f.config)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *f.timeout)
		defer cancel()
		return report(herald.Reload(ctx, path, stdout), stderr)
	case "install", "uninstall":
		if code, done := parse(fs, args, 0, stdout, stderr); done {
			return code
		}
		if !*f.user {
			fmt.Fprintf(stderr, "herald %s: only --user is supported; the system service comes with the herald package\n", name)
			printHelp(stderr, fs)
			return herald.ExitUsage
		}
		do := userinstall.Install
		if name == "uninstall" {
			do = userinstall.Uninstall
		}
		return report(do(context.Background(), userinstall.Options{Out: stdout}), stderr)
	default: // status, doctor
		if code, done := parse(fs, args, 0, stdout, stderr); done {
			return code
		}
		o := herald.InspectOptions{ConfigPath: *f.config, Unit: *f.unit, User: *f.user, AdminSocket: *f.socket, JSON: *f.json, Out: stdout}
		if name == "status" {
			return report(herald.Status(context.Background(), o), stderr)
		}
		return report(herald.Doctor(context.Background(), o), stderr)
	}
}

// flags are the values of a subcommand's flags; those it does not define
// stay nil.
type flags struct {
	config, credDir, socket, unit *string
	json, user                    *bool
	timeout                       *time.Duration
}

// newFlagSet returns the flag set of the named subcommand, or nil if there
// is none. Help and errors are printed by parse, not by the flag package.
func newFlagSet(name string) *flag.FlagSet {
	for _, c := range commands {
		if c.name == name {
			fs := flag.NewFlagSet("herald "+name, flag.ContinueOnError)
			fs.Usage = func() {}
			return fs
		}
	}
	return nil
}

// defineFlags defines the flags of the subcommand fs is for.
func defineFlags(fs *flag.FlagSet) flags {
	var f flags
	name := strings.TrimPrefix(fs.Name(), "herald ")
	switch name {
	case "run", "check-config", "reload", "status", "doctor":
		f.config = fs.String("config", "", "configuration file")
	}
	switch name {
	case "check-config":
		f.credDir = fs.String("credentials-dir", paths.CredentialsDir, "where systemd credentials named in the file are read from outside the service")
	case "reload":
		f.socket = fs.String("admin-socket", "", "admin socket path (default: found from the configuration, as status does)")
		f.timeout = fs.Duration("timeout", 5*time.Minute, "give up after this long")
	case "status", "doctor":
		f.json = fs.Bool("json", false, "machine-readable output")
		f.unit = fs.String("unit", "", "unit name (default: from the configuration, herald.service)")
		f.user = fs.Bool("user", false, "ask the user service manager instead of the system one")
		f.socket = fs.String("admin-socket", "", "admin socket path (default: found from the configuration)")
	case "install", "uninstall":
		f.user = fs.Bool("user", false, "the systemd user manager of the calling user (~/.config/systemd/user)")
	}
	return f
}

// parse parses a subcommand's arguments, allowing at most maxArgs
// positional ones. done reports that the command must not run, with code:
// after -h or --help (its help on stdout, exit 0) or a usage error (the
// error and its help on stderr, exit 64).
func parse(fs *flag.FlagSet, args []string, maxArgs int, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(stderr) // the flag package's own error messages
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, fs)
		return herald.ExitOK, true
	case err != nil:
		printHelp(stderr, fs)
		return herald.ExitUsage, true
	case fs.NArg() > maxArgs:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(maxArgs))
		printHelp(stderr, fs)
		return herald.ExitUsage, true
	}
	return 0, false
}

// printHelp writes a subcommand's help: synopsis, what it does, its flags.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	name := strings.TrimPrefix(fs.Name(), "herald ")
	for _, c := range commands {
		if c.name == name {
			fmt.Fprintf(w, "usage: %s\n\n%s.\n", strings.TrimSpace("herald "+c.name+" "+c.synopsis), c.about)
		}
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nflags:\n")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

// report prints err (if any) and returns its exit code.
func report(err error, stderr io.Writer) int {
	if err != nil && !herald.AlreadyLogged(err) {
		fmt.Fprintf(stderr, "herald: %v\n", err)
	}
	return herald.ExitCode(err)
}
