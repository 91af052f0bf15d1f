// SPDX-License-Identifier: Apache-2.0

// Command herald-sandbox is the command-line face of pkg/testsupport/systemdbox (a throw-away
// systemd as PID 1 of private namespaces, for tests). It holds no logic of its
// own; scripts/systemd-sandbox builds and runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/heraldgw/herald/pkg/testsupport/systemdbox"
)

const usage = `usage: systemd-sandbox <command> [-name NAME] [args]

  boot  [-share HOST[:GUEST]]... [-mask UNIT]... [-timeout 60s] [-log-level notice]
        boot a sandbox, print its PID 1; state in /run/herald-sandbox/NAME
        (GUEST defaults to /srv/herald-test; shares are read-only)
  run   CMD [ARG]...   run a command inside (stdio attached, exit code passed on)
  shell                interactive shell inside
  copy  HOST GUEST     copy a host file or directory into the sandbox
  stop                 power off (kill after 15 s) and remove the state
  list                 list sandboxes in /run/herald-sandbox

NAME defaults to "default". Needs root, util-linux >= 2.38 and overlayfs.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "systemd-sandbox:", err)
		os.Exit(1)
	}
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		return nil
	}
	verb := args[0]
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "default", "sandbox name")
	var shares, masks multi
	timeout := time.Minute
	logLevel := "notice"
	if verb == "boot" {
		fs.Var(&shares, "share", "HOST[:GUEST]")
		fs.Var(&masks, "mask", "unit to mask")
		fs.DurationVar(&timeout, "timeout", timeout, "boot timeout")
		fs.StringVar(&logLevel, "log-level", "notice", "systemd --log-level")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%s: %w\n%s", verb, err, usage)
	}
	rest := fs.Args()
	if ok, why := systemdbox.Available(); !ok {
		return errors.New(why)
	}
	switch verb {
	case "boot":
		opts := systemdbox.Options{Name: *name, ExtraMasks: masks, BootTimeout: timeout, LogLevel: logLevel, Detach: true, Log: os.Stderr}
		for _, s := range shares {
			host, guest, _ := strings.Cut(s, ":")
			opts.Shares = append(opts.Shares, systemdbox.Share{Host: host, Guest: guest})
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		s, err := systemdbox.Boot(ctx, opts)
		if err != nil {
			return err
		}
		fmt.Println(s.PID1())
		fmt.Fprintf(os.Stderr, "sandbox %q running; console log in %s/%s/console.log\n", s.Name(), systemdbox.StateRoot, s.Name())
		return nil
	case "run", "shell":
		if verb == "shell" {
			rest = []string{"/bin/bash", "-l"}
		}
		if len(rest) == 0 {
			return fmt.Errorf("run: no command\n%s", usage)
		}
		s, err := systemdbox.Open(*name)
		if err != nil {
			return err
		}
		// Replace this process with nsenter so the terminal, signals and the
		// exit code behave as if the command ran here.
		cmd := s.Command(context.Background(), rest[0], rest[1:]...)
		if cmd.Err != nil {
			return cmd.Err
		}
		env := cmd.Env
		if t := os.Getenv("TERM"); t != "" {
			env = append(env, "TERM="+t)
		}
		return syscall.Exec(cmd.Path, cmd.Args, env)
	case "copy":
		if len(rest) != 2 {
			return fmt.Errorf("copy: want HOST GUEST\n%s", usage)
		}
		s, err := systemdbox.Open(*name)
		if err != nil {
			return err
		}
		return s.CopyIn(rest[0], rest[1])
	case "stop":
		s, err := systemdbox.Open(*name)
		if err != nil {
			// Not running: remove what a killed owner left behind.
			fmt.Fprintln(os.Stderr, "systemd-sandbox:", err)
			return systemdbox.Prune()
		}
		return s.Close()
	case "list":
		ents, err := os.ReadDir(systemdbox.StateRoot)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range ents {
			state := "stale"
			if s, err := systemdbox.Open(e.Name()); err == nil {
				state = fmt.Sprintf("running, PID 1 %d", s.PID1())
			}
			fmt.Printf("%s\t%s\n", e.Name(), state)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", verb, usage)
}
